"""A synthetic time series: many dates of one sample-world place, with the change of each step.

:func:`make_time_series` lays out the same world as :func:`~cdtools.synthetic.make_scene_pair`
for a seed, then changes it again and again (changes accumulate: a field cleared in one
step may be built on in a later one, a house built in one step demolished later), and
renders every date with its own look (a green or a dry year, light, haze, sun, a slight
misregistration) and its own parked vehicles. The dates are written side by side through
the sample world's renderer, so memory holds one layout per date and one block at a time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine

from cdtools.errors import ParameterError
from cdtools.synthetic import palette
from cdtools.synthetic.changes import Change, apply_changes
from cdtools.synthetic.layout import Building, Layout, Parcels, make_layout
from cdtools.synthetic.looks import DateLook, random_look
from cdtools.synthetic.noise import LatticeNoise, NoiseBank
from cdtools.synthetic.outputs import (
    forget_record,
    reusable,
    write_record,
)
from cdtools.synthetic.scene import (
    CRS_CODE,
    DEFAULT_ORIGIN,
    PIXEL_SIZE,
    check_size_and_seed,
    count_kinds,
    write_changes,
    write_images,
)
from cdtools.synthetic.vehicles import park_vehicles

log = logging.getLogger(__name__)

_FORMAT = 1  # bump when the same arguments give different files
_RECORD = "time_series.json"
_MONTH_DAY = "07-01"
"""Every date is the first of July of its year."""


@dataclass(frozen=True)
class SampleSeries:
    """Where a sample time series' files are, and the grid they share.

    ``scenes[k]`` shows ``dates[k]``; ``changes[k]`` is the 0/1 mask of the change
    between ``dates[k]`` and ``dates[k + 1]``, whose polygons are the rows of
    ``change_polygons`` with ``step == k``.
    """

    dates: tuple[str, ...]
    scenes: tuple[Path, ...]
    changes: tuple[Path, ...]
    change_polygons: Path
    crs: CRS
    transform: Affine

    @property
    def folder(self) -> Path:
        """The folder holding the files."""
        return self.change_polygons.parent


def make_time_series(
    out_dir: str | os.PathLike[str],
    *,
    dates: int = 4,
    size: int = 512,
    seed: int = 0,
    nir: bool = False,
    start_year: int = 2018,
    overwrite: bool = False,
) -> SampleSeries:
    """Write a synthetic series of one place, one image a year, with the change of each step.

    The first two dates show the same world as :func:`~cdtools.synthetic.make_scene_pair`
    with the same ``size`` and ``seed`` (in other looks); each later date is the one
    before it with new change. Files in ``out_dir``: ``<YYYY-MM-DD>.tif`` per date
    (uint8, EPSG:32614, 0.5 m pixels, the sample world's origin), ``change_<k>.tif``
    (uint8 0/1, the change between date ``k`` and ``k + 1``) and
    ``change_polygons.geojson`` (one row per change: ``step`` = k, ``from_date``,
    ``to_date``, ``kind``, ``area_m2``). Pseudo-change (season, light, haze, crops,
    vehicles, misregistration, noise) is not labelled. The same arguments always give
    the same arrays.

    Args:
        out_dir: Folder for the files (created if needed).
        dates: Number of dates, two or more.
        size: Width and height in pixels of 0.5 m; a positive multiple of 64.
        seed: Seed of everything random.
        nir: Add a fourth, near-infrared band to every image.
        start_year: Year of the first date; date ``k`` is the first of July of
            ``start_year + k``.
        overwrite: Make the series again when ``out_dir`` already holds one; when
            False, a series made there with the same arguments is reused (another raises).

    Returns:
        The dates, the paths of the files, the CRS and the affine transform.

    Raises:
        ParameterError: an argument cannot work (the message says what would).
        OutputExistsError: ``out_dir`` holds another sample series (pass ``overwrite=True``).

    Example:
        >>> import tempfile
        >>> series = make_time_series(tempfile.mkdtemp(), dates=3, size=128)
        >>> series.dates
        ('2018-07-01', '2019-07-01', '2020-07-01')
        >>> [p.name for p in series.changes]
        ['change_0.tif', 'change_1.tif']
    """
    _check_arguments(dates, size, seed, start_year)
    count, size, seed, nir = int(dates), int(size), int(seed), bool(nir)
    start_year = int(start_year)
    folder = Path(out_dir)
    transform = Affine(PIXEL_SIZE, 0, DEFAULT_ORIGIN[0], 0, -PIXEL_SIZE, DEFAULT_ORIGIN[1])
    labels = tuple(f"{start_year + k:04d}-{_MONTH_DAY}" for k in range(count))
    series = SampleSeries(
        dates=labels,
        scenes=tuple(folder / f"{label}.tif" for label in labels),
        changes=tuple(folder / f"change_{k}.tif" for k in range(count - 1)),
        change_polygons=folder / "change_polygons.geojson",
        crs=CRS.from_string(CRS_CODE),
        transform=transform,
    )
    arguments = {
        "format": _FORMAT,
        "dates": count,
        "size": size,
        "seed": seed,
        "nir": nir,
        "start_year": start_year,
    }
    record = folder / _RECORD
    if reusable(record, arguments, overwrite, what="a sample time series"):
        log.info("reusing the sample time series in %s", folder)
        return series
    files = [*series.scenes, *series.changes, series.change_polygons]
    _forget_previous(record, keep={p.name for p in files})

    grounds, steps = world_dates(size, count, seed)
    _, _, vehicle_seed, look_seed, _ = np.random.SeedSequence(seed).spawn(5)
    vehicle_rng = np.random.default_rng(vehicle_seed)
    parked = [park_vehicles(layout, vehicle_rng) for layout in grounds]
    look_rng = np.random.default_rng(look_seed)
    noise = _noise_of_dates(size, count, look_rng)
    looks = _looks(count, look_rng)
    grid = {"crs": series.crs, "transform": transform}
    write_images(series.scenes, parked, looks, noise, **grid, seed=seed, nir=nir)
    write_changes(
        series.change_polygons,
        series.changes,
        steps,
        size=size,
        **grid,
        step_columns={
            "step": list(range(count - 1)),
            "from_date": labels[:-1],
            "to_date": labels[1:],
        },
    )
    write_record(
        record,
        {
            **arguments,
            "files": [p.name for p in files],
            "changes": [count_kinds(step) for step in steps],
        },
    )
    log.info(
        "wrote a %d px sample time series of %d dates with %d changes to %s",
        size, count, sum(map(len, steps)), folder,
    )  # fmt: skip
    return series


def world_dates(size: int, count: int, seed: int) -> tuple[list[Layout], list[tuple[Change, ...]]]:
    """The ground layout of every date (no vehicles) and the changes of every step.

    Date 0 and step 0 are those of :func:`~cdtools.synthetic.make_scene_pair` with the
    same ``size`` and ``seed``; crop states go on changing at every later date.
    """
    layout_seed, change_seed, _, _, crop_seed = np.random.SeedSequence(seed).spawn(5)
    first = make_layout(size, np.random.default_rng(layout_seed))
    parcels = _crop_states(first.parcels, count, np.random.default_rng(crop_seed))
    layouts = [dataclasses.replace(first, parcels=parcels)]
    steps: list[tuple[Change, ...]] = []
    change_rng = np.random.default_rng(change_seed)
    for _ in range(count - 1):
        after, changes = apply_changes(layouts[-1], change_rng)
        layouts.append(_carry_buildings(layouts[-1], after, changes))
        steps.append(changes)
    return layouts, steps


def _check_arguments(dates: int, size: int, seed: int, start_year: int) -> None:
    if isinstance(dates, bool) or not isinstance(dates, int | np.integer) or dates < 2:
        raise ParameterError(
            f"dates must be a whole number of 2 or more (got {dates!r}); try dates=4."
        )
    check_size_and_seed(size, seed)
    if (
        isinstance(start_year, bool)
        or not isinstance(start_year, int | np.integer)
        or not 1 <= start_year <= 10000 - dates
    ):
        raise ParameterError(
            f"start_year must be a year from 1 to {10000 - dates} so that all {dates} dates "
            f"have four-digit years (got {start_year!r}); try start_year=2018."
        )


def _forget_previous(record: Path, *, keep: set[str]) -> None:
    """Before (re)writing: remove the record, and the files of an overwritten series that
    this one does not write again (a longer series' later dates), so none is left stale."""
    if record.exists():
        previous = json.loads(record.read_text()).get("files", [])
        for name in previous:
            if name not in keep and Path(name).name == name:
                (record.parent / name).unlink(missing_ok=True)
    forget_record(record)


def _crop_states(parcels: Parcels, count: int, rng: np.random.Generator) -> Parcels:
    """Parcels with a crop state for each of ``count`` dates (row k for date k).

    The first two are the pair's before and after states; after that, as in
    ``layout._parcel_looks``, about two fields in three move on to another state each year.
    """
    states = list(parcels.state[:2])
    kinds = len(palette.CropState)
    while len(states) < count:
        previous = states[-1]
        moves = rng.random(previous.size) < 0.65
        moved = (previous + rng.integers(1, kinds, size=previous.size)) % kinds
        states.append(np.where(moves, moved, previous).astype(np.uint8))
    return dataclasses.replace(parcels, state=np.stack(states[:count]))


def _carry_buildings(before: Layout, after: Layout, changes: tuple[Change, ...]) -> Layout:
    """``after`` with the buildings that stand on it, so a later step may demolish them.

    :func:`apply_changes` leaves the after date's building list empty (a pair needs no
    more); a series keeps the houses not demolished and adds the new ones.
    """
    demolished = [c.polygon for c in changes if c.kind == "demolition"]
    standing = [b for b in before.buildings if not any(b.footprint.equals(p) for p in demolished)]
    for change in changes:
        if change.kind != "new_building":
            continue
        point = change.polygon.representative_point()
        row, col = int(point.y), int(point.x)
        roof, height = int(after.roof[row, col]), int(after.height[row, col])
        standing.append(Building(footprint=change.polygon, roof=roof, height=height))
    return dataclasses.replace(after, buildings=tuple(standing))


def _noise_of_dates(size: int, count: int, rng: np.random.Generator) -> NoiseBank:
    """The sample world's noise fields, with a seasonal and a haze field for every date."""
    noise = NoiseBank.draw(size, rng)
    more = range(count - len(noise.seasonal))
    seasonal = tuple(LatticeNoise(size, noise.seasonal[0].cell, rng) for _ in more)
    haze = tuple(LatticeNoise(size, noise.haze[0].cell, rng) for _ in more)
    # NoiseBank is typed for a pair; the renderer indexes these by DateLook.date.
    return dataclasses.replace(noise, seasonal=noise.seasonal + seasonal, haze=noise.haze + haze)


def _looks(count: int, rng: np.random.Generator) -> tuple[DateLook, ...]:
    """One look per date: green and dry years alternate, light and sensor vary.

    Dates alternate as the two dates of a pair do: even dates are the reference (no
    misregistration, milder light), odd dates are shifted by 0.3-0.7 pixel on both axes
    with stronger light and colour. Any two consecutive dates then differ as much as a
    pair from make_scene_pair does, not twice as much.
    """
    lush = rng.uniform(0.7, 1.0)
    dry = lush - rng.uniform(0.35, 0.6)
    green_first = rng.random() < 0.5
    looks = []
    for k in range(count):
        base = lush if (k % 2 == 0) == green_first else dry
        greenness = float(np.clip(base + rng.uniform(-0.08, 0.08), 0.0, 1.0))
        if k % 2 == 0:
            shift, strength = (0.0, 0.0), 0.5
        else:
            offset = rng.uniform(0.3, 0.7, size=2) * rng.choice([-1, 1], size=2)
            shift, strength = (float(offset[0]), float(offset[1])), 1.0
        looks.append(random_look(rng, date=k, greenness=greenness, shift=shift, strength=strength))
    return tuple(looks)
