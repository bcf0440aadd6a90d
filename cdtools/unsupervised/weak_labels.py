"""Weak labels: an unsupervised change map turned into training labels for a detector.

Where :func:`cdtools.detect_change` is confident, its map can teach a network: pixels
whose statistic is well above the threshold become change (1), pixels well below it
no change (0), and the uncertain band around the threshold, with nodata, becomes 255
(ignore), which losses and metrics leave out. The result is a 0/1/255 label raster that
:func:`cdtools.export_training_data` takes as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from cdtools.chips.labels import CHANGE, IGNORE, NO_CHANGE
from cdtools.errors import LabelError, ParameterError
from cdtools.io.raster import PathLike

log = logging.getLogger(__name__)

#: Default confidence band, as scores s = T / (T + T0) of a map whose threshold is 0.5:
#: no change where the statistic is at most half the threshold (s <= 1/3), change
#: where it is at least twice the threshold (s >= 2/3).
LOW, HIGH = 1 / 3, 2 / 3
DESCRIPTION = "weak change labels: 1 = confident change, 0 = confident no change, 255 = ignore"


def weak_labels(
    change: Any,
    out_path: PathLike,
    *,
    low: float = LOW,
    high: float = HIGH,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write the confident parts of an unsupervised change map as a 0/1/255 label raster.

    Args:
        change: a uint8 change map from :func:`cdtools.detect_change` (or any map in its
            encoding: ``round(255 s)`` for a score s whose threshold is
            ``change.attrs["threshold"]``, 255 for no data).
        out_path: GeoTIFF to write; it keeps the map's CRS and transform.
        low: scores at or below this are confident no change (0).
        high: scores at or above this are confident change (1); scores between ``low``
            and ``high``, and nodata, are 255 (ignore).
        overwrite: replace an existing ``out_path``.
        progress: show a progress bar while the map is computed.

    Returns:
        ``out_path``.

    Raises:
        ParameterError: ``low`` and ``high`` are not ``0 <= low < threshold < high <= 1``.
        LabelError: no pixel is confident change, or none is confident no change (a
            detector cannot learn from one class; widen the band or check the map).

    Example:
        >>> change = detect_change(load_pair("before.tif", "after.tif"))  # doctest: +SKIP
        >>> labels = weak_labels(change, "weak_labels.tif")  # doctest: +SKIP
        >>> export_training_data("before.tif", "after.tif", labels, "chips")  # doctest: +SKIP
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    from cdtools.io.cog import write_raster

    threshold = float(change.attrs.get("threshold", 0.5))
    if not 0.0 <= low < threshold < high <= 1.0:
        raise ParameterError(
            f"weak_labels needs 0 <= low < threshold < high <= 1, got low={low}, "
            f"threshold={threshold} (the map's), high={high}; for example low={LOW:.2f}, "
            f"high={HIGH:.2f} around a threshold of 0.5."
        )
    coded = change.data
    valid = coded != IGNORE
    confident_change = valid & (coded >= np.ceil(255 * high))
    confident_still = valid & (coded <= np.floor(255 * low))
    counts = _counts(confident_change, confident_still)
    if counts["change"] == 0 or counts["no change"] == 0:
        missing = "change" if counts["change"] == 0 else "no change"
        raise LabelError(
            f"no pixel of the map is confident {missing} (low={low:.2f}, high={high:.2f}; "
            f"{counts['change']} change, {counts['no change']} no change), so a detector "
            "could not learn from these labels; move low or high towards the threshold, "
            "or check the map (detect_change's attrs say how it was thresholded)."
        )
    labels = change.copy(
        data=np.where(confident_change, CHANGE, np.where(confident_still, NO_CHANGE, IGNORE))
    ).astype(np.uint8)
    labels.attrs = {"long_name": DESCRIPTION, "low": low, "high": high}
    labels = labels.rio.write_nodata(IGNORE)
    written = write_raster(labels, out_path, cog=False, overwrite=overwrite, progress=progress)
    log.info(
        "weak_labels: %d change and %d no-change pixels written to %s",
        counts["change"],
        counts["no change"],
        written,
    )
    return written


def _counts(change: Any, still: Any) -> dict[str, int]:
    """How many pixels each confident class holds (computed once, lazily or not)."""
    import dask

    n_change, n_still = dask.compute(change.sum(), still.sum())
    return {"change": int(n_change), "no change": int(n_still)}
