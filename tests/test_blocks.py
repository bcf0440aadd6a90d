"""compute_in_batches: a dask array computed a few chunks at a time, in row order."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

import cdtools.io.blocks as blocks


def test_no_more_than_a_batch_of_chunks_per_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory flat in scene size: the scheduler never sees more than CHUNKS_IN_FLIGHT x
    threads chunks at once, so it cannot read the whole scene ahead of its consumers."""
    batches: list[int] = []
    store = da.store

    def counting(sources, targets, **kwargs):
        batches.append(len(sources))
        return store(sources, targets, **kwargs)

    monkeypatch.setattr(da, "store", counting)
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
