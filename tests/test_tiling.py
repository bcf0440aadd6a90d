from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cdtools.errors import ParameterError
from cdtools.scene.tiling import blend_window, predict_tiled, tile_starts


def test_tile_starts_cover_the_axis_and_end_flush() -> None:
    assert tile_starts(100, 32, 8) == [0, 24, 48, 68]
    assert tile_starts(20, 32, 8) == [0]
    assert tile_starts(64, 32, 0) == [0, 32]


def test_blend_window_discards_shared_edges_and_keeps_scene_borders() -> None:
    window = blend_window(32, 8)
    assert window[:2].max() == 0 and window[16, 16] == 1
    assert 0 < window[2, 16] < window[5, 16] < window[8, 16] == 1
    corner = blend_window(32, 8, inner=(False, True, False, True))  # top-left tile
    assert corner[0, 0] == 1 and corner[-1, -1] == 0


def local_model(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """A stand-in model with a small receptive field: a 5x5 mean of |after - before|."""
    diff = np.abs(after - before).mean(1)
    return np.stack([ndimage.uniform_filter(d, 5, mode="constant") for d in diff])


def test_tiles_blend_without_seams() -> None:
    rng = np.random.default_rng(0)
    before = rng.normal(size=(3, 150, 130)).astype(np.float32)
    after = rng.normal(size=(3, 150, 130)).astype(np.float32)
    whole = local_model(before[None], after[None])[0]
    a = predict_tiled(local_model, before, after, tile=48, overlap=16, batch_size=3)
    b = predict_tiled(local_model, before, after, tile=64, overlap=24, batch_size=5)
    assert a.shape == (150, 130)
    # The model reaches 2 pixels and the discarded margin is overlap / 4 >= 4 pixels, so no
    # value comes from a tile edge: tiled equals whole, whatever the tiling.
    np.testing.assert_allclose(a, whole, atol=1e-5)
    np.testing.assert_allclose(b, whole, atol=1e-5)
    seams = predict_tiled(local_model, before, after, tile=48, overlap=0)
    assert np.abs(seams - whole).max() > 0.1  # without overlap there are seams


def test_bad_tiling() -> None:
    x = np.zeros((1, 40, 40), np.float32)
    with pytest.raises(ParameterError, match="overlap"):
        predict_tiled(local_model, x, x, tile=32, overlap=20)
