"""compute_in_batches: a dask array computed a few chunks at a time, in row order;
ChunksInOneTask: a chunk read and used in one task, with other tasks' outputs."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

import cdtools.io.blocks as blocks


def test_no_more_than_a_batch_of_chunks_per_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory flat in scene size: the scheduler never sees more than CHUNKS_IN_FLIGHT x
    threads chunks at once, so it cannot read the whole scene ahead of its consumers."""
    batches: list[int] = []
    compute = dask.compute

    def counting(*sources, **kwargs):
        batches.append(len(sources))
        return compute(*sources, **kwargs)

    monkeypatch.setattr(dask, "compute", counting)
    values = da.arange(1200 * 1000, chunks=-1).reshape(1200, 1000).rechunk(128) % 251
    with dask.config.set(num_workers=2):
        computed = blocks.compute_in_batches(values)
    assert sum(batches) == 10 * 8 and max(batches) == blocks.CHUNKS_IN_FLIGHT * 2
    np.testing.assert_array_equal(computed, np.arange(1200 * 1000).reshape(1200, 1000) % 251)


def test_bands_chunked_apart_and_numpy_arrays() -> None:
    values = np.random.default_rng(0).uniform(0, 1, (2, 3, 300, 260)).astype(np.float32)
    lazy = da.from_array(values, chunks=(1, 2, 128, 100))
    np.testing.assert_array_equal(blocks.compute_in_batches(lazy), values)
    assert blocks.compute_in_batches(values) is values


def test_a_chunk_is_read_and_used_in_one_task_with_another_tasks_output() -> None:
    order: list[str] = []

    def note(name: str, value: np.ndarray) -> np.ndarray:
        order.append(name)
        return value

    dates = [da.ones((6, 6), chunks=3), da.full((6, 6), 2.0, chunks=3)]
    pair = da.stack(dates).rechunk({0: -1}).map_blocks(lambda a: note("read", a))
    chunks = blocks.ChunksInOneTask(pair)
    largest = chunks.delayed((0, 1, 1), lambda a: a.max())

    def add(chunk: np.ndarray, most: float, absent: None) -> np.ndarray:
        return chunk.sum(axis=0) + most + (0 if absent is None else 99)

    summed = chunks.apply((0, 1, 0), add, largest, None, shape=(3, 3), dtype=float)
    assert not set(summed.__dask_graph__()) & set(pair.__dask_graph__())  # all inside
    order.clear()  # map_blocks called note on empty arrays to learn their type
    np.testing.assert_array_equal(summed.compute(scheduler="sync"), np.full((3, 3), 5.0))
    assert order == ["read", "read"]  # two chunks of the four, each read once


def test_a_chunk_outside_the_array_is_refused() -> None:
    from cdtools.errors import ParameterError

    chunks = blocks.ChunksInOneTask(da.ones((4, 4), chunks=2))
    with pytest.raises(ParameterError, match=r"chunk \(2, 0\) is not one of the array's \(2, 2\)"):
        chunks.apply((2, 0), np.sum, shape=(), dtype=float)
