"""Tiles with overlap, blended with smooth weights, so predictions have no seams.

A model sees less context near a tile's edge, so its output is worse there. Tiles
overlap by ``overlap`` pixels. Along an edge shared with another tile, the outer quarter
of the overlap gets weight 0 (discarded) and the rest ramps up smoothly (a raised
cosine); along the scene's own border the weight stays 1. The weighted sum divided by
the summed weights gives one value per pixel: for a model whose receptive field reaches
less than ``overlap / 4`` pixels, exactly the whole-image prediction.
:func:`cdtools.predict_scene` lays these tiles over a scene and blends them.
"""

from __future__ import annotations

import numpy as np

from cdtools.errors import ParameterError


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: every ``tile - overlap``, the last flush with the end."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def blend_window(
    tile: int, overlap: int, *, inner: tuple[bool, bool, bool, bool] = (True, True, True, True)
) -> np.ndarray:
    """``(tile, tile)`` weights; ``inner`` says which edges (top, bottom, left, right) are
    shared with another tile and so ramp down; the others keep weight 1 to the edge."""
    top, bottom, left, right = inner
    return np.outer(_ramp(tile, overlap, top, bottom), _ramp(tile, overlap, left, right))


def _ramp(tile: int, overlap: int, low: bool, high: bool) -> np.ndarray:
    ramp = np.ones(tile, dtype=np.float32)
    if overlap == 0:
        return ramp
    dead = overlap // 4
    i = np.arange(overlap - dead, dtype=np.float32)
    edge = np.concatenate(
        [np.zeros(dead, np.float32), 0.5 - 0.5 * np.cos(np.pi * (i + 0.5) / len(i))]
    )
    if low:
        ramp[:overlap] = edge
    if high:
        ramp[tile - overlap :] = np.minimum(ramp[tile - overlap :], edge[::-1])
    return ramp


def check_tiling(tile: int, overlap: int) -> None:
    """Raise a ParameterError unless ``tile`` and ``overlap`` make a usable tile grid."""
    if tile < 16:
        raise ParameterError(f"tile must be at least 16 pixels, got {tile}.")
    if not 0 <= overlap <= tile // 2:
        raise ParameterError(f"overlap must be between 0 and tile/2 = {tile // 2}, got {overlap}.")
