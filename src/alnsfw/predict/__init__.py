"""Use a trained model: export it (export.py), score new images and videos (run.py, the
`alnsfw predict` command in alnsfw.cli), and judge whole videos from their frames (video.py).

video.py is NumPy only, so the active-learning loop and its tests import it without TensorFlow.
"""
