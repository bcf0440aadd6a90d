"""Stitching predict_scene's chunks: overlap-add of the tiles' weighted sums.

Each chunk's sums reach up to one tile below and to the right of it. The output chunk is
its own sums plus the strips its upper, left and upper-left neighbours spilled into it.
The strips are copied out of each chunk's sums as soon as the chunk is done, so that a row
of chunks waiting for the row below holds strips one tile wide, not whole chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cdtools.scene.halo import shift_chunks

Encode = Callable[[np.ndarray], np.ndarray]


def overlap_add(
    sums: Any,
    rows: tuple[int, ...],
    cols: tuple[int, ...],
    tile: int,
    encode: Encode | None = None,
    dtype: Any = np.float32,
) -> Any:
    """The output chunks: each chunk's own sums plus what its upper, left and upper-left
    neighbours spilled into it, as probability (NaN: no data), or ``encode(probability)``
    of ``dtype``.

    The spill is copied out of each chunk's sums into strips one tile wide as soon as the
    chunk is done, so that a row of chunks waiting for the row below holds strips, not
    whole chunks: memory grows with the scene's width by a tile's strip per chunk.
    """
    import dask.array as da

    lanes = ((tile,) * len(rows), (tile,) * len(cols))
    cores = (rows, cols)

    def part(name: str, ys: tuple[int, ...], xs: tuple[int, ...]) -> Any:
        return sums.map_blocks(
            _cut, part=name, cores=cores, tile=tile, chunks=((2,), ys, xs), dtype=np.float32
        )

    above = shift_chunks(part("below", lanes[0], cols), axis=1, step=1)
    left = shift_chunks(part("right", rows, lanes[1]), axis=2, step=1)
    diagonal = shift_chunks(shift_chunks(part("corner", *lanes), axis=1, step=1), axis=2, step=1)
    return da.map_blocks(
        _blend,
        part("own", rows, cols),
        above,
        left,
        diagonal,
        encode=encode,
        drop_axis=0,
        chunks=cores,
        dtype=dtype,
        token=f"cdtools-blend-{np.dtype(dtype).name}",
    )


def _cut(
    block: np.ndarray,
    *,
    part: str,
    cores: tuple[tuple[int, ...], tuple[int, ...]],
    tile: int,
    block_info: dict[Any, Any] | None = None,
) -> np.ndarray:
    """A copy of one part of a chunk's sums: its own pixels, or the strip that spills
    below, to the right or into the corner (zeros where the scene ends)."""
    i, j = block_info[0]["chunk-location"][1:]  # type: ignore[index]
    h, w = cores[0][i], cores[1][j]
    ys = {"own": (0, h), "right": (0, h)}.get(part, (h, h + tile))
    xs = {"own": (0, w), "below": (0, w)}.get(part, (w, w + tile))
    out = np.zeros((2, ys[1] - ys[0], xs[1] - xs[0]), dtype=np.float32)
    piece = block[:, ys[0] : ys[1], xs[0] : xs[1]]
    out[:, : piece.shape[1], : piece.shape[2]] = piece
    return out


def _blend(
    own: np.ndarray,
    above: np.ndarray,
    left: np.ndarray,
    diagonal: np.ndarray,
    *,
    encode: Encode | None,
) -> np.ndarray:
    """One output chunk's sums with its neighbours' spill added, as probability."""
    tile = above.shape[1]
    total = own.copy()
    total[:, :tile] += above
    total[:, :, :tile] += left
    total[:, :tile, :tile] += diagonal
    prob = total[0] / np.maximum(total[1], np.float32(1e-12))  # NaN where no data
    return prob if encode is None else encode(prob)
