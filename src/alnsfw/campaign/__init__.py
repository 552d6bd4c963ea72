"""Labelling campaigns: the active-learning loop with people (Label Studio) as the annotator.

Three parts, each readable alone:

- the campaign's state: `state` (the draws, campaign.json, tasks.json, the checkpoint store, the
  lock) and `labels.LabelLog` (the append-only label log and the votes derived from it);
- the Label Studio adapter: `client` (REST client or files), `labels` (annotations checked,
  set aside, mapped to the two classes), `tasks` (task images and task JSON), `mlbackend`
  (Label Studio's ML-backend HTTP endpoints);
- the driver: `core` (start, a round, status, export; it uses the AL loop's public functions:
  `train_and_test`, `propose_query`, `RunState`), `service` (the served campaign's worker),
  `data` (the folder's keyframes and feature cache, made by the workflow's rules), and `run`
  (the `alnsfw campaign ...` glue).
"""
