"""Tiles with overlap, blended with smooth weights, so predictions have no seams.

A model sees less context near a tile's edge, so its output is worse there. Tiles
overlap by ``overlap`` pixels. Along an edge shared with another tile, the outer quarter
of the overlap gets weight 0 (discarded) and the rest ramps up smoothly (a raised
cosine); along the scene's own border the weight stays 1. The weighted sum divided by
the summed weights gives one value per pixel: for a model whose receptive field reaches
less than ``overlap / 4`` pixels, exactly the whole-image prediction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from cdtools.errors import ParameterError

# (before, after) batches of (n, c, tile, tile) float32 -> (n, tile, tile) probabilities
BatchPredictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


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
    if tile < 16:
        raise ParameterError(f"tile must be at least 16 pixels, got {tile}.")
    if not 0 <= overlap <= tile // 2:
        raise ParameterError(f"overlap must be between 0 and tile/2 = {tile // 2}, got {overlap}.")


def predict_tiled(
    predict: BatchPredictor,
    before: np.ndarray,
    after: np.ndarray,
    *,
    tile: int,
    overlap: int,
    batch_size: int = 8,
) -> np.ndarray:
    """Blend ``predict`` over overlapping tiles of a ``(c, h, w)`` pair; returns ``(h, w)``.

    Example:
        >>> f = lambda b, a: np.abs(a - b).mean(1)
        >>> x = np.zeros((3, 100, 80), np.float32)
        >>> predict_tiled(f, x, x + 1, tile=32, overlap=8).round(3).max()
        1.0
    """
    check_tiling(tile, overlap)
    _, height, width = before.shape
    pad_h, pad_w = max(tile - height, 0), max(tile - width, 0)
    if pad_h or pad_w:  # smaller than one tile: pad with the normalised mean (0)
        pad = ((0, 0), (0, pad_h), (0, pad_w))
        before, after = np.pad(before, pad), np.pad(after, pad)
    full_h, full_w = before.shape[1:]
    total = np.zeros((full_h, full_w), dtype=np.float32)
    weight = np.zeros((full_h, full_w), dtype=np.float32)
    windows: dict[tuple[bool, ...], np.ndarray] = {}
    for origins in _batches(full_h, full_w, tile, overlap, batch_size):
        crops = [(slice(None), slice(r, r + tile), slice(c, c + tile)) for r, c in origins]
        probs = predict(np.stack([before[s] for s in crops]), np.stack([after[s] for s in crops]))
        for (r, c), prob in zip(origins, probs, strict=True):
            inner = (r > 0, r + tile < full_h, c > 0, c + tile < full_w)
            if inner not in windows:
                windows[inner] = blend_window(tile, overlap, inner=inner)
            total[r : r + tile, c : c + tile] += prob * windows[inner]
            weight[r : r + tile, c : c + tile] += windows[inner]
    return (total / weight)[:height, :width]


def _batches(
    height: int, width: int, tile: int, overlap: int, size: int
) -> Iterator[list[tuple[int, int]]]:
    origins = [
        (r, c)
        for r in tile_starts(height, tile, overlap)
        for c in tile_starts(width, tile, overlap)
    ]
    for i in range(0, len(origins), size):
        yield origins[i : i + size]
