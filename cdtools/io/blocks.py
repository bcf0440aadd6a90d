"""Reading a scene with memory flat in its size: GDAL's cache capped, chunks in batches,
a chunk read and used in one task.

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

from cdtools.errors import ParameterError

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
    """``data.compute()`` for a dask array, :func:`batch_size` chunks per compute in row
    order, GDAL's cache capped; a numpy array is returned as is.

    Example:
        >>> import dask.array as da
        >>> compute_in_batches(da.arange(10, chunks=3)).sum()
        np.int64(45)
    """
    if not hasattr(data, "chunks") or not hasattr(data, "blocks"):
        return np.asarray(data)
    import dask
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
            # Computed, then placed here: a store into ``out`` on a dask cluster would write
            # into the workers' copies of it.
            values = dask.compute(*(data.blocks[index] for index in batch))
        for place, value in zip(places, values, strict=True):
            out[place] = value
    return out


class _Graph:
    """A chunk's own task graph, carried inside one task: dask does not look into it."""

    def __init__(self, graph: dict[Any, Any], key: Any) -> None:
        self.graph, self.key = graph, key

    def compute(self) -> Any:
        from dask.local import get_sync

        return get_sync(self.graph, self.key)


def _apply_to_chunk(graph: _Graph, prepare: Any, func: Any, *inputs: Any) -> Any:
    return func(_prepared(graph, prepare), *inputs)


def _prepared(graph: _Graph, prepare: Any) -> Any:
    """The chunk, prepared; the chunk as read is let go on return, before ``func`` runs."""
    return prepare(graph.compute())


def _as_read(chunk: Any) -> Any:
    return chunk


class ChunksInOneTask:
    """Each chunk of a dask array read and used in a single task, with other tasks' outputs.

    dask holds each task's output until its last consumer has run; a chunk made of
    several reads (two dates' chunks stacked) is otherwise held piece by piece while the
    scheduler reads others, and a row of an 8192-pixel pair's chunks was held at once.
    Inside one task, the pieces live only as long as the function needs them; with
    ``prepare`` (a function of a chunk, such as one that takes two dates' difference),
    the chunk as read is let go as soon as it is prepared. The array's graph is culled
    once, and each chunk's task carries only the tasks that chunk needs.

    Example:
        >>> import dask.array as da
        >>> pair = da.stack([da.ones((4, 4), chunks=2), da.ones((4, 4), chunks=2)])
        >>> chunks = ChunksInOneTask(pair.rechunk({0: -1}))
        >>> summed = chunks.apply((0, 1, 0), lambda a: a.sum(axis=0), shape=(2, 2), dtype=float)
        >>> summed.compute()[0, 0]
        np.float64(2.0)
        >>> chunks.delayed((0, 0, 1), lambda a, b: a.max() + b.max(), summed).compute()
        np.float64(3.0)
    """

    def __init__(self, data: Any, prepare: Any = None) -> None:
        import dask

        self._prepare = prepare or _as_read
        (self._data,) = dask.optimize(data)
        self._graph = dict(self._data.__dask_graph__())

    def delayed(self, index: tuple[int, ...], func: Any, *inputs: Any) -> Any:
        """``func(prepare(chunk), *values)`` for chunk ``index`` of the array, as a Delayed;
        each of ``inputs`` is None or a one-key dask collection (a Delayed, a one-chunk
        array)."""
        from dask.delayed import Delayed

        name, graph = self._task(index, func, inputs, ndim=None)
        return Delayed(name, graph)

    def apply(
        self, index: tuple[int, ...], func: Any, *inputs: Any, shape: tuple[int, ...],
        dtype: Any,
    ) -> Any:  # fmt: skip
        """As :meth:`delayed`, for a ``func`` that returns an array of ``shape`` and
        ``dtype``: a one-chunk dask array."""
        import dask.array as da

        name, graph = self._task(index, func, inputs, ndim=len(shape))
        return da.Array(graph, name, tuple((n,) for n in shape), dtype=dtype)

    def _task(self, index: tuple[int, ...], func: Any, inputs: Any, ndim: int | None) -> Any:
        from dask.base import tokenize
        from dask.core import flatten, get_dependencies
        from dask.highlevelgraph import HighLevelGraph

        if len(index) != self._data.ndim or not all(
            0 <= i < n for i, n in zip(index, self._data.numblocks, strict=True)
        ):
            raise ParameterError(
                f"chunk {index} is not one of the array's {self._data.numblocks} chunks."
            )
        chunk = (self._data.name, *index)
        needed, todo = {}, [chunk]
        while todo:
            k = todo.pop()
            if k not in needed:
                needed[k] = self._graph[k]
                todo.extend(get_dependencies(self._graph, k))
        collections = [c for c in inputs if c is not None]
        keys = [None if c is None else next(flatten(c.__dask_keys__())) for c in inputs]
        name = "in-one-task-" + tokenize(chunk, self._prepare, func, keys)
        task = (_apply_to_chunk, _Graph(needed, chunk), self._prepare, func, *keys)
        layer = {name if ndim is None else (name,) + (0,) * ndim: task}
        return name, HighLevelGraph.from_collections(name, layer, dependencies=collections)
