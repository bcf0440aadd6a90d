"""The regular-grid sample every unsupervised statistic is fitted on.

Statistics (means, covariances, canonical vectors, principal components, cluster
centres, thresholds) are fitted on at most ``size`` pixels taken on a regular grid, so
memory stays the same whatever the scene's size; the whole scene is only ever read
chunk by chunk.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cdtools.errors import GridError
from cdtools.io.blocks import compute_in_batches

DEFAULT_SAMPLE = 2**16  # pixels: plenty for a 12 x 12 covariance, quick to iterate on


def grid_sample(data: Any, *, size: int = DEFAULT_SAMPLE, window: int = 1) -> np.ndarray:
    """Windows of ``window`` x ``window`` pixels on a regular grid, those fully valid.

    Args:
        data: a ``(2, band, y, x)`` dask or numpy array (NaN: no data).
        size: about how many pixels to take in all (``size / window**2`` windows).
        window: the side of each window (1: single pixels); windows never overlap.

    Returns:
        A float64 array ``(n, 2, band, window, window)`` of the windows in which both
        dates have data in every band (``n`` may be 0).

    Raises:
        GridError: a band has no data at all in one date while the others have some (the
            dates were stacked from rasters with different band counts).

    Example:
        >>> import numpy as np
        >>> grid_sample(np.zeros((2, 3, 100, 100)), size=400).shape
        (400, 2, 3, 1, 1)
    """
    _, _, height, width = data.shape
    windows = max(1, size // window**2)
    step = max(window, math.ceil(math.sqrt(height * width / windows)))
    first = (step - window) // 2
    if window == 1:
        taken = data[:, :, first::step, first::step]
    else:
        rows = _window_indices(height, window, step, first)
        cols = _window_indices(width, window, step, first)
        taken = data[:, :, rows][:, :, :, cols] if len(rows) and len(cols) else data[:, :, :0, :0]
    taken = compute_in_batches(taken).astype(np.float64)  # memory flat in the scene's size
    check_bands(taken)
    dates, bands, h, w = taken.shape
    blocks = taken.reshape(dates, bands, h // window, window, w // window, window)
    blocks = blocks.transpose(2, 4, 0, 1, 3, 5).reshape(-1, dates, bands, window, window)
    valid = np.isfinite(blocks).all(axis=(1, 2, 3, 4))
    return blocks[valid]


def _window_indices(length: int, window: int, step: int, first: int) -> np.ndarray:
    starts = np.arange(first, length - window + 1, step)
    return (starts[:, None] + np.arange(window)).ravel()


def check_bands(taken: np.ndarray) -> None:
    """A :class:`GridError` when a band of one date is all no data but other bands are not."""
    has_data = np.isfinite(taken).any(axis=(2, 3))  # (date, band)
    for date, name in enumerate(("before", "after")):
        empty = np.flatnonzero(~has_data[date])
        if has_data[date].any() and len(empty):
            other = has_data[1 - date].sum()
            raise GridError(
                f"the {name} date has no data in band(s) {empty.tolist()} while its other "
                f"bands have some: its {int(has_data[date].sum())} bands with data do not "
                f"match the other date's {int(other)}; load both dates with the same bands "
                "(load_pair(..., bands=[...]))."
            )
