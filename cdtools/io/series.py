"""load_series: many dates of one place, lazily on one grid, in date order.

Dates come from the file names (``YYYYMMDD`` as NAIP writes them, ``YYYY-MM-DD``, or a
bare year as in ``1985.tif``) or are given. Files of the same date are tiles of that
date. Everything else is load_pair's machinery (:mod:`cdtools.io.mosaic`): one grid for
all dates (:func:`~cdtools.io.mosaic.common_grid`), tiles on that grid read directly, others
through a GDAL WarpedVRT, nothing read until a chunk is asked for.
"""

from __future__ import annotations

import datetime as dt
import glob
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from cdtools.errors import GridError, ParameterError, RasterError
from cdtools.io.mosaic import common_grid, tile_files
from cdtools.io.pair import ResamplingName, resampling_method, stack_dates
from cdtools.io.raster import PathLike, RasterInfo, describe

if TYPE_CHECKING:
    import xarray as xr


@runtime_checkable
class DatedScenes(Protocol):
    """Rasters of one place with a date each, such as :class:`~cdtools.synthetic.SampleSeries`."""

    @property
    def scenes(self) -> Sequence[PathLike]: ...

    @property
    def dates(self) -> Sequence[str]: ...


SeriesGrid = Literal["first", "intersection", "union"]
DateLike = str | dt.date | np.datetime64 | int

# Date styles in file names, tried in this order; the first valid date found wins.
_FULL_DATE = re.compile(r"(?<!\d)(\d{4})([-_])(\d{2})\2(\d{2})(?!\d)")  # 2018-07-01
_COMPACT_DATE = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)")  # NAIP: ..._20090818
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")  # Landsat composites: 1985.tif
_YEARS = range(1800, 2200)  # what an 8-digit number or a bare 4-digit one may be a year of


def load_series(
    source: PathLike | Sequence[PathLike] | DatedScenes,
    *,
    dates: Sequence[DateLike] | None = None,
    bands: Sequence[int] | None = None,
    grid: SeriesGrid = "first",
    resolution: float | None = None,
    resampling: ResamplingName = "bilinear",
    chunks: Any = "auto",
) -> xr.DataArray:
    """Open many dates of one place as one lazy ``(time, band, y, x)`` DataArray.

    Args:
        source: a folder of rasters (one per date, sorted by name), a glob pattern
            (``"naip/*.tif"``), a list of files, or :class:`DatedScenes` (``scenes``
            and their ``dates``, as :class:`~cdtools.synthetic.SampleSeries`). Files
            with the same date are tiles of that date and are mosaicked (the first file
            with data wins).
        dates: one date per file, in the order of the files (for a folder or a pattern:
            sorted by name): ``"2019-06-30"``, ``"2019"``, a year as an int, a
            ``datetime.date`` or a ``numpy.datetime64``. By default, dates are read from
            the file names: ``YYYYMMDD`` (``m_4709963_se_14_1_20090818.tif``),
            ``YYYY-MM-DD`` (or ``YYYY_MM_DD``) or a bare year ``YYYY`` (``1985.tif``
            is 1985-01-01), whichever comes first in that order.
        bands: 0-based band indices to keep (all when None).
        grid: "first" (default: the earliest date's CRS, resolution and extent),
            "intersection" or "union" of all dates' footprints, in the earliest date's CRS.
        resolution: pixel size of the grid in its CRS units (default: the earliest date's).
        resampling: a rasterio resampling name ("bilinear", "nearest", "cubic", ...).
        chunks: dask chunks of each date, as rioxarray takes them ("auto": 1024 x 1024
            pixels, all bands).

    Returns:
        An ``xarray.DataArray`` named "series", float32, with NaN where a date has no
        data, the grid's CRS and transform (``.rio``), and a ``time`` coordinate of the
        dates in ascending order (numpy datetime64; xarray keeps it at second precision,
        whole days: ``series.time.values.astype("datetime64[D]")`` gives the days).

    Raises:
        RasterError: no files were found, or one cannot be read.
        ParameterError: a file name holds no date (pass ``dates=``), or an option cannot work.
        GridError: the files have different band counts, no CRS, or do not overlap.

    Example:
        >>> series = load_series("naip_timeseries/")  # doctest: +SKIP
        >>> series.sizes, str(series.time.values[0])[:10]  # doctest: +SKIP
        (Frozen({'time': 10, 'band': 4, 'y': 1541, 'x': 1253}), '2009-08-18')
    """
    if grid not in ("first", "intersection", "union"):
        raise ParameterError(f"grid must be first, intersection or union, got {grid!r}.")
    method = resampling_method(resampling)
    files, given = _files(source)
    described = [describe(f) for f in files]  # first: a missing file is said to be missing
    _check_rasters(described)
    days = _dates(files, given if dates is None else dates)
    order = sorted(set(days))
    infos = [[i for i, day in zip(described, days, strict=True) if day == d] for d in order]
    groups = [[i.path for i in tiles] for tiles in infos]
    names = [_name(day, group) for day, group in zip(order, infos, strict=True)]
    extent = "reference" if grid == "first" else grid
    target = common_grid(infos, reference=0, extent=extent, resolution=resolution, names=names)
    series = stack_dates(groups, target, bands=bands, resampling=method, chunks=chunks)
    return series.assign_coords(time=np.array(order, dtype="datetime64[D]")).rename("series")


def _files(
    source: PathLike | Sequence[PathLike] | DatedScenes,
) -> tuple[list[Path], list[Any] | None]:
    """The files of ``source`` and, for dated scenes, their dates."""
    if isinstance(source, DatedScenes):
        return [Path(p) for p in source.scenes], list(source.dates)
    if isinstance(source, str | Path):
        text = str(source)
        if not Path(source).exists() and any(c in text for c in "*?["):
            found = sorted(Path(p) for p in glob.glob(text, recursive=True))
            files = [p for p in found if p.is_file()]
            if not files:
                raise RasterError(
                    f"no files match {text!r}; check the pattern (relative to {Path.cwd()})."
                )
            return files, None
        return tile_files(source), None
    items = list(source)
    if not items:
        raise RasterError("no files given; pass a folder, a glob pattern or a list of rasters.")
    return tile_files(items), None


def _dates(files: Sequence[Path], dates: Sequence[DateLike] | None) -> list[np.datetime64]:
    """One day per file, from ``dates`` or from the file names."""
    if dates is None:
        return [_date_in_name(f, files) for f in files]
    if isinstance(dates, str | bytes) or len(dates) != len(files):
        count = 1 if isinstance(dates, str | bytes) else len(dates)
        raise ParameterError(
            f"dates has {count} entries for {len(files)} files; give one date per file, in "
            f"the order of the files: {_list(files)}."
        )
    return [_as_day(value, file) for value, file in zip(dates, files, strict=True)]


def _date_in_name(file: Path, files: Sequence[Path]) -> np.datetime64:
    """The first valid date in the file's name, trying each style in turn."""
    stem = file.stem
    for pattern in (_FULL_DATE, _COMPACT_DATE, _YEAR):
        for match in pattern.finditer(stem):
            digits = [int(g) for g in match.groups() if g.isdigit()]
            year, month, day = (*digits, 1, 1)[:3]
            if pattern is not _FULL_DATE and year not in _YEARS:
                continue
            try:
                return np.datetime64(dt.date(year, month, day), "D")
            except ValueError:
                continue
    raise ParameterError(
        f"cannot find a date in the file name {file.name!r} (looked for YYYYMMDD, "
        f"YYYY-MM-DD or a year YYYY); rename it, or pass dates=[...] with one date per file "
        f"in this order: {_list(files)}."
    )


def _as_day(value: Any, file: Path) -> np.datetime64:
    try:
        if isinstance(value, int | np.integer) and not isinstance(value, bool):
            return np.datetime64(dt.date(int(value), 1, 1), "D")  # a year, not days since 1970
        if isinstance(value, str | dt.date | np.datetime64):
            day = np.datetime64(value, "D")
            if not np.isnat(day):
                return day
    except ValueError:
        pass
    raise ParameterError(
        f"the date {value!r} given for {file.name} is not a date; use 'YYYY-MM-DD', 'YYYY', "
        "a year as an int, a datetime.date or a numpy.datetime64."
    )


def _check_rasters(every: Sequence[RasterInfo]) -> None:
    """Every file georeferenced, and all with the same number of bands."""
    missing = [info.path.name for info in every if info.crs is None]
    if missing:
        raise GridError(
            f"{_list(missing)} {'has' if len(missing) == 1 else 'have'} no CRS; load_series "
            "needs georeferenced rasters."
        )
    counts = sorted({info.count for info in every})
    if len(counts) > 1:
        listed = "; ".join(
            f"{count} in {_list([i.path.name for i in every if i.count == count])}"
            for count in counts
        )
        raise GridError(
            f"the dates have different numbers of bands ({listed}); load_series needs the "
            "same bands in every file: pass files of one product, or make them agree first."
        )


def _name(day: np.datetime64, tiles: Sequence[RasterInfo]) -> str:
    """What errors call a date: its file, or its day and number of tiles."""
    return tiles[0].path.name if len(tiles) == 1 else f"{day} ({len(tiles)} tiles)"


def _list(names: Sequence[Any], most: int = 4) -> str:
    shown = [Path(n).name for n in names[:most]]
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(shown) + more
