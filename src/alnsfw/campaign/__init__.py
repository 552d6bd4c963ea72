"""Labelling campaigns: the active-learning loop with people (Label Studio) as the annotator.

- labels: Label Studio tasks -> checked annotations -> the append-only label log, majority vote.
- tasks: full-resolution task images and the task JSON (pre-annotation, AL rank).
- client: a Label Studio server through its SDK, or files (task-import JSON out, export in).
- core: the campaign (audit / validation / initial draws, rounds) on alnsfw.al.loop's seam.
- run: the `alnsfw campaign ...` glue.
"""
