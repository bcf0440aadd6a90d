"""Whole scenes: tiling, the model as scene inference uses it, predict_scene, change maps."""
