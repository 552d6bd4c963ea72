"""The model stage: ResNet50V2 with a trainable top, the frozen-trunk feature cache, the Learner.

Submodules are imported on demand (``from alnsfw.model.learner import build_learner``) because
importing TensorFlow takes seconds and the workflow's rule files only need `alnsfw.model.tags`.

- `tags`: names of the cached feature files (no TensorFlow).
- `network`: the full model, its trunk and top, weights, trainable split, augmentation, threads.
- `features`: computing and reading the feature cache and the augmentation bank.
- `learner`: `Learner`, the narrow fit/predict interface the active-learning loop uses.
"""
