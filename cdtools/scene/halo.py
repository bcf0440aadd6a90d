"""predict_scene's input chunks, each with a halo one tile wide below and to the right.

A chunk owns the tiles that start in it, and those reach up to one tile into the chunks
below and to the right. A dask overlap would take that halo from the neighbours' own
chunks, so a whole row of input chunks would wait in memory, read, for the row above to be
done with it. Here the halo is read a second time, from a copy of the input's graph
under keys of its own, and only its strip one tile wide is kept: the reads are repeated
(about 7 % of predict_scene's time on a 2-core CPU), and memory no longer grows with the
scene's width by a row of whole chunks (peak RSS at 8192 pixels: 1.17x that at 2048,
1.32x with the overlap; ``benchmarks/scene_speed.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def with_halo(data: Any, tile: int) -> Any:
    """``data`` (a dask array, ``(..., y, x)``) with each chunk extended by ``tile`` pixels
    of the chunks below and to the right, none where the scene ends (like a dask overlap of
    depth ``(0, tile)`` with ``boundary="none"``)."""
    import dask.array as da

    rows, cols = data.chunks[-2:]
    lead = data.chunks[:-2]
    strips = {
        # the part of each chunk that its upper, left and upper-left neighbours need
        "top": (slice(0, tile), slice(None), (tile,) * len(rows), cols),
        "left": (slice(None), slice(0, tile), rows, (tile,) * len(cols)),
        "corner": (slice(0, tile), slice(0, tile), (tile,) * len(rows), (tile,) * len(cols)),
    }
    parts = {}
    for name, (ys, xs, ychunks, xchunks) in strips.items():
        copy = _read_again(data, name)
        parts[name] = copy.map_blocks(
            _strip, ys=ys, xs=xs, chunks=(*lead, ychunks, xchunks), dtype=data.dtype
        )
    below = shift_chunks(parts["top"], axis=-2, step=-1)
    right = shift_chunks(parts["left"], axis=-1, step=-1)
    corner = shift_chunks(shift_chunks(parts["corner"], axis=-2, step=-1), axis=-1, step=-1)
    chunks = (*lead, _grown(rows, tile), _grown(cols, tile))
    return da.map_blocks(_joined, data, below, right, corner, chunks=chunks, dtype=data.dtype)


def _read_again(data: Any, name: str) -> Any:
    """A copy of ``data``'s graph down to its reads, under keys of its own; ``data`` itself
    where the graph cannot be copied.

    (``dask.graph_manipulation.clone`` would be the public way, but in dask 2026.8 its
    copies of rechunk layers keep links to the original's keys.)
    """
    import dask.array as da

    try:
        from dask._task_spec import convert_legacy_graph

        graph = convert_legacy_graph(dict(data.__dask_graph__()))
        renamed = {key: _renamed(key, name) for key in graph}
        copy = {renamed[k]: node.substitute(renamed, key=renamed[k]) for k, node in graph.items()}
        if any(dep not in copy for node in copy.values() for dep in node.dependencies):
            return data
    except (ImportError, AttributeError, TypeError):  # a dask whose graphs are built otherwise
        return data
    return da.Array(copy, _renamed(data.name, name), data.chunks, dtype=data.dtype)


def _renamed(key: Any, name: str) -> Any:
    if isinstance(key, tuple):
        return (f"{key[0]}-halo-{name}", *key[1:])
    return f"{key}-halo-{name}"


def _strip(block: np.ndarray, *, ys: slice, xs: slice) -> np.ndarray:
    return block[..., ys, xs].copy()  # a copy, so the chunk it came from can go


def shift_chunks(strips: Any, axis: int, step: int) -> Any:
    """``strips`` moved by one chunk along ``axis``: with ``step=1`` chunk k holds chunk
    k - 1's strip and the first chunk zeros; with ``step=-1`` chunk k holds chunk k + 1's
    and the last chunk zeros. (The halo takes strips from the next chunks; the stitching
    adds the spill of the previous ones.)"""
    import dask.array as da

    axis = axis % strips.ndim
    if strips.numblocks[axis] == 1:
        return da.zeros_like(strips)

    def along(index: slice) -> tuple[slice, ...]:
        return tuple(index if a == axis else slice(None) for a in range(strips.ndim))

    if step == 1:
        zeros = da.zeros_like(strips.blocks[along(slice(0, 1))])
        return da.concatenate([zeros, strips.blocks[along(slice(None, -1))]], axis=axis)
    zeros = da.zeros_like(strips.blocks[along(slice(-1, None))])
    return da.concatenate([strips.blocks[along(slice(1, None))], zeros], axis=axis)


def _grown(sizes: tuple[int, ...], tile: int) -> tuple[int, ...]:
    return tuple(s + tile for s in sizes[:-1]) + sizes[-1:]


def _joined(
    own: np.ndarray,
    below: np.ndarray,
    right: np.ndarray,
    corner: np.ndarray,
    block_info: dict[Any, Any] | None = None,
) -> np.ndarray:
    """One chunk and its halo; none below the last row or right of the last column."""
    height, width = block_info[None]["chunk-shape"][-2:]  # type: ignore[index]
    top = np.concatenate([own, right[..., : width - own.shape[-1]]], axis=-1)
    rest = height - own.shape[-2]
    bottom = np.concatenate([below[..., :rest, :], corner[..., :rest, :]], axis=-1)
    return np.concatenate([top, bottom[..., : top.shape[-1]]], axis=-2)
