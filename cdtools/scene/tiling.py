"""Tiles with overlap, blended with smooth weights, so predictions have no seams.

A model sees less context near a tile's edge, so its output is worse there. Tiles
overlap by ``overlap`` pixels. Along an edge shared with another tile, the outer quarter
of the overlap gets weight 0 (discarded) and the rest ramps up smoothly (a raised
cosine); along the scene's own border the weight stays 1. The weighted sum divided by
the summed weights gives one value per pixel: for a model whose receptive field reaches
less than ``overlap / 4`` pixels, exactly the whole-image prediction.
:func:`cdtools.predict_scene` lays these tiles over a scene and blends them, in tiles of
the size :func:`choose_tiling` picks for the scene and the model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cdtools.errors import GridError, ParameterError

# take tiles larger than their chips unchanged
FULLY_CONVOLUTIONAL = {"siamese_unet", "fc_ef", "fc_siam_conc", "fc_siam_diff"}


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


def choose_tiling(
    arch: str,
    chip_size: int,
    height: int,
    width: int,
    *,
    tile: int | None,
    overlap: int | None,
    largest: int = 640,
) -> tuple[int, int]:
    """(tile, overlap): as given, or chosen for this scene with tiles up to ``largest``."""
    fits = min(height, width, largest) // 32 * 32

    def default_overlap(size: int) -> int:
        return overlap if overlap is not None else max(chip_size // 4, size // 8)

    if tile is None and arch in FULLY_CONVOLUTIONAL and fits >= 448:
        sizes = range(448, min(fits, 640) + 1, 32)
        tile = _economical_tile(height, width, sizes, default_overlap)
    elif tile is None:
        tile = min(chip_size, fits)
    if tile % 32:
        raise ParameterError(f"tile must be a multiple of 32, got {tile}.")
    if tile > min(height, width) or tile < 32:
        raise GridError(
            f"the pair's common area is {height} x {width} pixels, too small for one "
            f"{max(tile, 32)}-pixel tile; check that the dates overlap enough, use "
            "grid='union', or pass a smaller tile (a multiple of 32)."
        )
    overlap = overlap if overlap is not None else min(default_overlap(tile), tile // 2)
    check_tiling(tile, overlap)
    return tile, overlap


def _economical_tile(
    height: int, width: int, sizes: range, overlap_of: Callable[[int], int]
) -> int:
    """The tile size, among ``sizes``, whose tile grid predicts the fewest pixels."""

    def cost(tile: int) -> tuple[int, int]:
        rows = len(tile_starts(height, tile, overlap_of(tile)))
        cols = len(tile_starts(width, tile, overlap_of(tile)))
        return rows * cols * tile * tile, -tile

    return min(sizes, key=cost)
