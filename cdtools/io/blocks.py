"""Dask arrays computed a few chunks at a time, so that memory stays flat in scene size.

One ``compute`` over a whole scene lets dask's local schedulers read inputs far ahead of
the tasks that consume them: an 8192-pixel pair sampled on a grid (the unsupervised
statistics' sample) or streamed to a GeoTIFF through an overlap graph (``predict_scene``)
held most of the pair at once. Computing the chunks in row order, a few per thread at a
time, bounds what is in memory by the batch, whatever the scene's size. GDAL's block cache
is capped meanwhile (:data:`GDAL_CACHE_MB`): by default it may take 5 % of the RAM and
kept every block of an 8192-pixel pair it read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

CHUNKS_IN_FLIGHT = 2  # per scheduler thread: enough to keep every thread busy
GDAL_CACHE_MB = 64  # a few strips of 512-pixel blocks


def batch_size() -> int:
    """How many chunks are computed at once: :data:`CHUNKS_IN_FLIGHT` per thread of dask's
    local scheduler (``dask.config`` ``num_workers``, else one thread per CPU)."""
    import dask
    from dask.system import CPU_COUNT

    threads = dask.config.get("num_workers", None) or CPU_COUNT
    return max(1, CHUNKS_IN_FLIGHT * int(threads))


def store_in_batches(data: Any, target: Any, *, done: Callable[[int], Any] | None = None) -> None:
    """``target[place] = chunk`` for every chunk of the dask array ``data``, in row order,
    :func:`batch_size` chunks per ``dask.array.store`` (each chunk is stored by the thread
    that computed it), with GDAL's cache capped.

    Args:
        data: a dask array.
        target: anything that takes ``target[tuple of slices] = values`` from several
            threads at once (a numpy array, a window writer).
        done: called with the number of chunks of each batch once it is stored.

    Example:
        >>> import dask.array as da
        >>> out = np.zeros((4, 6))
        >>> store_in_batches(da.ones((4, 6), chunks=(2, 3)), out)
        >>> out.sum()
        np.float64(24.0)
    """
    import dask.array as da
    import rasterio

    starts = [np.cumsum((0, *sizes[:-1])) for sizes in data.chunks]
    indices = list(np.ndindex(*data.numblocks))
    step = batch_size()
    for first in range(0, len(indices), step):
        batch = indices[first : first + step]
        places = [
            tuple(
                slice(int(starts[axis][i]), int(starts[axis][i]) + data.chunks[axis][i])
                for axis, i in enumerate(index)
            )
            for index in batch
        ]
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            sources = [data.blocks[index] for index in batch]
            da.store(sources, [target] * len(batch), regions=places, lock=False)
        if done is not None:
            done(len(batch))


def compute_in_batches(data: Any) -> np.ndarray:
    """``data.compute()`` for a dask array, a batch of chunks at a time (a numpy array as is).

    Example:
        >>> import dask.array as da
        >>> compute_in_batches(da.arange(10, chunks=3)).sum()
        np.int64(45)
    """
    if not hasattr(data, "chunks") or not hasattr(data, "blocks"):
        return np.asarray(data)
    out = np.empty(data.shape, dtype=data.dtype)
    store_in_batches(data, out)
    return out
