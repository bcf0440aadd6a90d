"""Reading a scene with memory flat in its size: GDAL's cache capped, chunks in batches.

GDAL's block cache may take 5 % of the RAM by default, and it kept every block of an
8192-pixel pair that a computation read: :data:`GDAL_CACHE_MB` caps it, in
:func:`compute_in_batches` and in :func:`cdtools.write_raster`. Where only a little of
each chunk is kept (the unsupervised statistics' grid sample), :func:`compute_in_batches`
also hands dask a few chunks at a time, in row order, so that nothing can read far ahead
of what it consumes.
"""

from __future__ import annotations

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


def compute_in_batches(data: Any) -> np.ndarray:
    """``data.compute()`` for a dask array, :func:`batch_size` chunks per ``dask.array.store``
    in row order (each chunk stored by the thread that computed it), GDAL's cache capped;
    a numpy array is returned as is.

    Example:
        >>> import dask.array as da
        >>> compute_in_batches(da.arange(10, chunks=3)).sum()
        np.int64(45)
    """
    if not hasattr(data, "chunks") or not hasattr(data, "blocks"):
        return np.asarray(data)
    import dask.array as da
    import rasterio

    out = np.empty(data.shape, dtype=data.dtype)
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
            da.store(sources, [out] * len(batch), regions=places, lock=False)
    return out
