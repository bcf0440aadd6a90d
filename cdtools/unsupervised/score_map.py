"""The uint8 change-score map of a fitted statistic, chunk by chunk, lazily.

Every chunk of the pair is read and scored in one task
(:class:`cdtools.io.blocks.ChunksInOneTask`), so one date's chunks never wait in memory for
the other's. A statistic of each pixel alone (cva, irmad) is one pass; one that looks at
a pixel's neighbours (pca_kmeans) is two: the first keeps only the edges of each chunk's
difference image, the second scores each chunk with its neighbours' edges around it.
Peak memory is the same at 2048 and 8192 pixels
(``benchmarks/unsupervised_memory.py``).

The score is encoded as :func:`cdtools.predict_scene` encodes change probability:
uint8 ``min(round(255 s), 254)``, 255 where either date has no data, for ``s = T / (T +
T0)`` of the statistic T and its threshold T0.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from cdtools.io.blocks import ChunksInOneTask
from cdtools.scene.changemap import NODATA, encode_probability


def score_map(data: Any, model: Any, reference: float) -> Any:
    """The uint8 score of a ``(2, band, y, x)`` dask array (NaN: no data) under a fitted
    ``model`` with threshold ``reference`` in its statistic, a ``(y, x)`` dask array on
    the pair's chunks (a last chunk thinner than a halo model's halo merged into its
    neighbour)."""
    return (_with_halo if model.halo else _pixelwise)(data, model, reference)


def _pixelwise(data: Any, model: Any, reference: float) -> Any:
    """The score of a model of each pixel alone (cva, irmad), chunk by chunk, each chunk
    read and scored in one task (:class:`cdtools.io.blocks.ChunksInOneTask`), so one
    date's chunks never wait in memory for the other's."""
    import dask.array as da

    reads = ChunksInOneTask(data)
    score = partial(_score_block, model=model, reference=reference)
    return da.block(
        [
            [
                reads.apply((0, 0, k, j), score, shape=(height, width), dtype=np.uint8)
                for j, width in enumerate(data.chunks[3])
            ]
            for k, height in enumerate(data.chunks[2])
        ]
    )


def _score_block(block: np.ndarray, *, model: Any, reference: float) -> np.ndarray:
    """uint8 score of a ``(2, band, y, x)`` block; 255 where a date has no data."""
    valid = np.isfinite(block).all(axis=(0, 1))
    return _encode(model.statistic(np.where(valid, block, 0)), valid, reference)


def _halo_block(diff: np.ndarray, *, model: Any, reference: float) -> np.ndarray:
    """uint8 score of a difference image block with the model's halo on every side."""
    h = model.halo
    valid = np.isfinite(diff[h:-h, h:-h])
    return _encode(model.difference_statistic(diff), valid, reference)


def _encode(statistic: np.ndarray, valid: np.ndarray, reference: float) -> np.ndarray:
    """predict_scene's encoding of the score ``T / (T + reference)``; a NaN score (an
    infinite statistic) is change, 255 only where ``valid`` is not."""
    statistic = np.maximum(statistic, 0)
    score = np.nan_to_num(statistic / (statistic + np.float32(reference)), nan=1.0)
    return np.where(valid, encode_probability(score), np.uint8(NODATA))


def _with_halo(data: Any, model: Any, reference: float) -> Any:
    """The score of a model that looks at each pixel's neighbours (pca_kmeans), in two
    passes over the chunks, each chunk read and used in one task
    (:class:`cdtools.io.blocks.ChunksInOneTask`).

    The first pass keeps only the edges of each chunk's difference image (the ``halo``
    lines and columns on each side); the second computes each chunk's difference again
    and scores it with its eight neighbours' edges around it. So no difference chunk
    waits in memory for its neighbours: holding rows of them for the halo made memory
    grow with the scene's width, and holding one date's chunks for the other's with its
    area. The price is reading the pair twice. Outside the scene the difference image
    is mirrored (``numpy.pad``'s "symmetric").
    """
    import dask.array as da

    data = data.rechunk({axis: _thick(data.chunks[axis], model.halo) for axis in (2, 3)})
    rows, cols = data.numblocks[2:]
    reads = ChunksInOneTask(data, prepare=model.difference)
    edges = {
        (k, j): reads.delayed((0, 0, k, j), partial(_edges, halo=model.halo))
        for k in range(rows)
        for j in range(cols)
    }

    def score(k: int, j: int) -> Any:
        around = [edges.get((k + dk, j + dj)) for dk in (-1, 0, 1) for dj in (-1, 0, 1)]
        around[4] = None  # the chunk itself
        return reads.apply(
            (0, 0, k, j), partial(_score_with_neighbours, model=model, reference=reference),
            *around,
            shape=(data.chunks[2][k], data.chunks[3][j]), dtype=np.uint8,
        )  # fmt: skip

    return da.block([[score(k, j) for j in range(cols)] for k in range(rows)])


def _thick(sizes: tuple[int, ...], halo: int) -> tuple[int, ...]:
    """Chunk sizes along an axis with every chunk at least ``halo`` thick (the scene's
    last chunk is often a sliver), each thinner one merged into its neighbour.

    Example:
        >>> _thick((64, 64, 1), 2)
        (64, 65)
    """
    merged = list(sizes)
    while len(merged) > 1 and min(merged) < halo:
        i = merged.index(min(merged))
        thin = merged.pop(i)
        merged[max(i - 1, 0)] += thin  # into the chunk before it, or after it if first
    return tuple(merged)


def _edges(diff: np.ndarray, *, halo: int) -> dict[str, np.ndarray]:
    """Copies of the first and last ``halo`` lines and columns of a difference image."""
    h = halo
    return {
        "top": diff[:h].copy(), "bottom": diff[-h:].copy(),
        "left": diff[:, :h].copy(), "right": diff[:, -h:].copy(),
    }  # fmt: skip


def _score_with_neighbours(
    diff: np.ndarray, *around: dict[str, np.ndarray] | None, model: Any, reference: float
) -> np.ndarray:
    """uint8 score of a chunk's difference image extended by the edges of the eight
    chunks ``around`` it (row by row, None where there is none)."""
    h = model.halo
    (nw, n, ne), (w, _, e), (sw, s, se) = around[:3], around[3:6], around[6:]
    middle = np.concatenate(
        [
            w["right"] if w else diff[:, :h][:, ::-1],
            diff,
            e["left"] if e else diff[:, -h:][:, ::-1],
        ],
        axis=1,
    )

    def band(centre: Any, left: Any, right: Any, strip: str, mirror: np.ndarray) -> np.ndarray:
        if centre is None:
            return mirror[::-1]
        lines = centre[strip]
        return np.concatenate(
            [
                left[strip][:, -h:] if left else lines[:, :h][:, ::-1],
                lines,
                right[strip][:, :h] if right else lines[:, -h:][:, ::-1],
            ],
            axis=1,
        )

    extended = np.concatenate(
        [band(n, nw, ne, "bottom", middle[:h]), middle, band(s, sw, se, "top", middle[-h:])]
    )
    return _halo_block(extended, model=model, reference=reference)
