"""Change along a series: a change map per consecutive step, and the date of first change.

:func:`detect_series_change` runs :func:`~cdtools.unsupervised.detect.detect_change` on
every pair of consecutive dates of a :func:`cdtools.load_series` stack, each step fitted
and thresholded on its own pair, and stacks the maps along a ``step`` dimension (lazy,
uint8, 255: no data, as every change map). :func:`first_change_date` reduces them to one
raster: for each pixel, the index of the date at which change was first seen (for a
deforestation front: when each pixel was cleared); :func:`plot_first_change` draws it
with a legend of dates and shares.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from cdtools.errors import CdtoolsWarning, ParameterError
from cdtools.unsupervised.detect import NODATA, Method, Threshold, detect_change
from cdtools.unsupervised.pca_kmeans import BLOCK
from cdtools.unsupervised.sample import DEFAULT_SAMPLE

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

NO_CHANGE = 0
"""first_change_date's value where every step with data is below its threshold."""
FIRST_NODATA = -1
"""first_change_date's value (its ``rio.nodata``) where no step has data."""
NO_CHANGE_RGBA = (0.93, 0.93, 0.93, 1.0)  # light grey: seen, never changed
NODATA_RGBA = (0.0, 0.0, 0.0, 0.0)  # clear: no data


def detect_series_change(
    series: Any,
    *,
    method: Method = "irmad",
    threshold: Threshold | float = "auto",
    sample: int = DEFAULT_SAMPLE,
    block: int = BLOCK,
    seed: int = 0,
) -> xr.DataArray:
    """Lazy unsupervised change score of every step of a series, each fitted on its own pair.

    Args:
        series: a ``(time, band, y, x)`` DataArray of two or more dates on one grid, from
            :func:`cdtools.load_series` (NaN: no data).
        method, threshold, sample, block, seed: as :func:`cdtools.detect_change`, applied
            to each pair of consecutive dates in turn.

    Returns:
        A lazy uint8 ``(step, y, x)`` DataArray named "change_score" with the series' CRS
        and transform: step k is :func:`cdtools.detect_change` of dates k and k + 1
        (score x 255, 255: no data in either date). Coordinates ``step`` ("1985-01-01 ->
        1990-01-01"), ``from_date`` and ``to_date`` (datetime64) name the steps;
        ``attrs["threshold"]`` is the score threshold all steps share (0.5 for a named
        rule), ``attrs["dates"]`` the series' dates, ``attrs["threshold_statistic"]``
        and ``attrs["threshold_method"]`` each step's own. Show it with
        ``TimeSlider(series, changes=steps)``, or reduce it with :func:`first_change_date`.

    Raises:
        ParameterError: the series is not ``(time, band, y, x)`` with two or more dates,
            or an option cannot work (see :func:`cdtools.detect_change`).

    Warns:
        CdtoolsWarning: a step has no data on both dates or no difference between them
            (its map is all 0 or 255); the warning names the step.

    Example:
        >>> series = load_series("landsat_pucallpa/")  # doctest: +SKIP
        >>> steps = detect_series_change(series, method="irmad")  # doctest: +SKIP
        >>> [str(s) for s in steps.step.values][:1]  # doctest: +SKIP
        ['1985-01-01 -> 1990-01-01']
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr

    dims = tuple(getattr(series, "dims", ()))
    if dims != ("time", "band", "y", "x") or series.sizes["time"] < 2:
        sizes = dict(series.sizes) if hasattr(series, "sizes") else type(series).__name__
        raise ParameterError(
            f"series must be a (time, band, y, x) DataArray of two or more dates from "
            f"load_series, got {sizes}; for one pair use detect_change."
        )
    dates = [_day(t) for t in series["time"].values]
    maps = []
    for k in range(len(dates) - 1):
        name = f"{dates[k]} -> {dates[k + 1]}"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CdtoolsWarning)
            pair = series.isel(time=[k, k + 1])
            maps.append(
                detect_change(
                    pair, method=method, threshold=threshold, sample=sample, block=block,
                    seed=seed,
                ).drop_vars("spatial_ref", errors="ignore")
            )  # fmt: skip
        for warning in caught:  # the same warning, saying which step
            if issubclass(warning.category, CdtoolsWarning):
                message = f"step {k} ({name}): {warning.message}"
                warnings.warn(message, CdtoolsWarning, stacklevel=2)
            else:
                warnings.warn_explicit(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
    steps = xr.concat(maps, dim="step", combine_attrs="drop")
    times = series["time"].values
    steps = steps.assign_coords(
        step=[f"{dates[k]} -> {dates[k + 1]}" for k in range(len(maps))],
        from_date=("step", times[:-1]),
        to_date=("step", times[1:]),
    )
    steps.attrs = {
        "long_name": f"change score x 255 per step ({method}; 255: no data)",
        "method": method,
        "threshold": maps[0].attrs["threshold"],
        "dates": dates,
        "threshold_statistic": [m.attrs.get("threshold_statistic", np.nan) for m in maps],
        "threshold_method": [m.attrs["threshold_method"] for m in maps],
    }
    if series.rio.crs is not None:
        steps = steps.rio.write_crs(series.rio.crs)
    steps = steps.rio.write_transform(series.rio.transform()).rio.write_nodata(NODATA)
    return steps.rename("change_score")


def first_change_date(changes: Any, *, threshold: float | None = None) -> xr.DataArray:
    """For each pixel, the index of the date at which change was first seen.

    Args:
        changes: the ``(step, y, x)`` uint8 result of :func:`detect_series_change` (score
            x 255, 255: no data).
        threshold: a step is change where its score (value / 255) is above it (default:
            the maps' ``threshold`` attribute, else 0.5).

    Returns:
        A lazy int16 ``(y, x)`` DataArray named "first_change", on the maps' grid (CRS,
        transform): k >= 1 where the first step above the threshold is the one from date
        k - 1 to date k, so ``attrs["dates"][k]`` is the first date showing the change
        (for a deforestation front: the clearing happened between ``dates[k - 1]`` and
        ``dates[k]``); 0 (:data:`NO_CHANGE`) where every step with data is below the
        threshold; -1 (:data:`FIRST_NODATA`, its ``rio.nodata``) where no step has data.
        Steps without data at a pixel are skipped, so a change in a gap is dated at the
        next step with data. ``attrs["legend"]`` names every value.

    Example:
        >>> first = first_change_date(detect_series_change(series))  # doctest: +SKIP
        >>> first.attrs["dates"][int(first[100, 200])]  # doctest: +SKIP
        '2005-01-01'
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr

    if tuple(getattr(changes, "dims", ())) != ("step", "y", "x"):
        raise ParameterError(
            "changes must be the (step, y, x) result of detect_series_change, got "
            f"{getattr(changes, 'dims', type(changes).__name__)}."
        )
    if changes.dtype != np.uint8:
        raise ParameterError(
            f"changes must be uint8 scores x 255 (detect_series_change), got {changes.dtype}."
        )
    stored = changes.attrs.get("threshold")
    cut = float(threshold if threshold is not None else stored if stored is not None else 0.5)
    if not 0 <= cut < 1:
        raise ParameterError(f"threshold must be a score in [0, 1), got {cut}.")
    dates = list(changes.attrs.get("dates") or _dates_of(changes))
    data = changes.data
    if not hasattr(data, "map_blocks"):
        import dask.array as da

        data = da.from_array(np.asarray(data), chunks=(-1, 1024, 1024))
    first = data.rechunk({0: -1}).map_blocks(
        _first_block, cut=cut, drop_axis=0, dtype=np.int16, token="cdtools-first-change"
    )
    legend = ["no change"] + [f"{dates[k]} (since {dates[k - 1]})" for k in range(1, len(dates))]
    attrs = {
        "long_name": "index of the date of first change (0: no change; -1: no data)",
        "dates": dates,
        "legend": legend,
        "threshold": cut,
        "method": changes.attrs.get("method", ""),
    }
    coords = {dim: changes.coords[dim] for dim in ("y", "x") if dim in changes.coords}
    result = xr.DataArray(first, dims=("y", "x"), coords=coords, name="first_change", attrs=attrs)
    if changes.rio.crs is not None:
        result = result.rio.write_crs(changes.rio.crs)
    return result.rio.write_transform(changes.rio.transform()).rio.write_nodata(FIRST_NODATA)


def _first_block(block: np.ndarray, *, cut: float) -> np.ndarray:
    """int16 first-change index of a ``(step, y, x)`` uint8 block."""
    valid = block != NODATA
    changed = valid & (block.astype(np.float32) / 255 > cut)
    first = np.argmax(changed, axis=0).astype(np.int16) + 1  # step k: date k + 1
    first = np.where(changed.any(axis=0), first, np.int16(NO_CHANGE))
    return np.where(valid.any(axis=0), first, np.int16(FIRST_NODATA)).astype(np.int16)


def first_change_shares(first: Any) -> dict[str, float]:
    """Share of the pixels with data whose first change is at each date (and "no change").

    Example:
        >>> first_change_shares(first)  # doctest: +SKIP
        {'no change': 0.81, '1990-01-01': 0.04, ...}
    """
    values = np.asarray(first.values)
    dates = list(first.attrs["dates"])
    counts = np.bincount(values[values >= 0].ravel(), minlength=len(dates))
    total = max(int(counts.sum()), 1)
    names = ["no change", *dates[1:]]
    return {name: float(n) / total for name, n in zip(names, counts, strict=True)}


def plot_first_change(
    first: Any, *, cmap: str = "viridis", size: float = 6.0, title: str | None = None
) -> Figure:
    """The date of first change in map coordinates, one colour per date, with a legend.

    Each legend entry gives the step (the date before, the date the change was first
    seen; years alone for annual dates) and the share of the pixels with data first
    changed then; pixels never changed are light grey, no data is clear.

    Example:
        >>> fig = plot_first_change(first_change_date(steps))  # doctest: +SKIP
        >>> fig.savefig("first_change.png")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    values = np.asarray(first.values)
    dates = list(first.attrs["dates"])
    colours = plt.get_cmap(cmap)(np.linspace(0, 1, max(len(dates) - 1, 1)))
    lookup = np.array([NO_CHANGE_RGBA, *colours], dtype=np.float32)
    image = np.zeros((*values.shape, 4), dtype=np.float32)
    known = values >= 0
    image[known] = lookup[np.clip(values[known], 0, len(lookup) - 1)]
    image[~known] = NODATA_RGBA
    t = first.rio.transform()
    left, top = t.c, t.f
    right, bottom = left + t.a * values.shape[1], top + t.e * values.shape[0]
    aspect = min(max(values.shape[1] / max(values.shape[0], 1), 0.5), 3.0)
    fig, ax = plt.subplots(figsize=(size * aspect + 3.5, size))  # the legend on the right
    ax.imshow(image, extent=(left, right, bottom, top), interpolation="nearest")
    shares = first_change_shares(first)
    short = _short(dates)
    labels = [f"no change: {shares['no change']:.1%}"] + [
        f"{short[k - 1]} → {short[k]}: {shares[dates[k]]:.1%}" for k in range(1, len(dates))
    ]
    handles = [
        Patch(facecolor=lookup[k], edgecolor="0.6", label=label) for k, label in enumerate(labels)
    ]
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=8,
        title="first change seen",
    )  # fmt: skip
    method = first.attrs.get("method")
    ax.set_title(title or f"date of first change{f' ({method})' if method else ''}")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _day(time: Any) -> str:
    if isinstance(time, np.datetime64):
        return str(time.astype("datetime64[D]"))
    return str(time)


def _short(dates: list[str]) -> list[str]:
    """Years alone when every date is the same day of its year (annual composites)."""
    if len({d[4:] for d in dates}) == 1 and all(len(d) == 10 for d in dates):
        return [d[:4] for d in dates]
    return dates


def _dates_of(changes: Any) -> list[str]:
    """The dates from the step coordinates, when attrs do not hold them."""
    if "from_date" in changes.coords and "to_date" in changes.coords:
        starts = [_day(t) for t in changes["from_date"].values]
        return [*starts, _day(changes["to_date"].values[-1])]
    return [str(k) for k in range(changes.sizes["step"] + 1)]
