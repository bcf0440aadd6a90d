"""The embedded sample world: a georeferenced before/after pair with its change truth.

:func:`make_scene_pair` lays out a world from a seed, changes a copy of it, renders both
dates and writes everything atomically. Rendering goes block by block (1024 pixels
square, each with a halo, written window by window into the GeoTIFFs), so memory stays
bounded at any size; texture noise comes from scene-wide lattices and per-block seeds
derived from ``seed``, so the output does not depend on anything but the arguments.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.features
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window

from cdtools.errors import ParameterError
from cdtools.io.raster import atomic_path, write_geotiff
from cdtools.synthetic import geometry
from cdtools.synthetic.changes import Change, apply_changes
from cdtools.synthetic.landcover import landcover_from_material
from cdtools.synthetic.layout import Layout, make_layout
from cdtools.synthetic.looks import DateLook, draw_looks
from cdtools.synthetic.noise import NoiseBank
from cdtools.synthetic.outputs import (
    forget_record,
    reusable,
    write_record,
)
from cdtools.synthetic.render import HALO, Texture, crop_layout, finish, make_texture, paint
from cdtools.synthetic.vehicles import park_vehicles

log = logging.getLogger(__name__)

CRS_CODE = "EPSG:32614"
"""UTM zone 14N: the sample world lies near Austin, Texas."""
PIXEL_SIZE = 0.5
"""Metres per pixel."""
DEFAULT_ORIGIN = (620000.0, 3350000.0)
"""Upper-left corner (easting, northing) in :data:`CRS_CODE`."""
BLOCK = 1024
_FORMAT = 1  # bump when the same arguments give different files
_RECORD = "sample_world.json"
_BAND_NAMES = ("red", "green", "blue", "nir")


@dataclass(frozen=True)
class SampleWorld:
    """Where a sample world's files are, and the grid they share."""

    before: Path
    after: Path
    change_polygons: Path
    change_mask: Path
    landcover_before: Path
    landcover_after: Path
    crs: CRS
    transform: Affine

    @property
    def folder(self) -> Path:
        """The folder holding the files."""
        return self.before.parent


def make_scene_pair(
    out_dir: str | os.PathLike[str],
    *,
    size: int = 1024,
    seed: int = 0,
    nir: bool = False,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
    overwrite: bool = False,
) -> SampleWorld:
    """Write a synthetic before/after pair with change polygons, mask and land cover.

    Real change (new buildings and roads, demolition, cleared or built-over forest, new
    ponds) is in ``change_polygons.geojson`` (a ``kind`` per feature) and in
    ``change_mask.tif`` rasterised from it. Pseudo-change is not labelled: light and
    colour balance, season, harvest and ploughing, haze, sun position, blur, sub-pixel
    misregistration of the after date and sensor noise. Land-cover maps of both dates
    use the EuroSAT class codes. The same arguments always give the same arrays.

    Args:
        out_dir: Folder for the files (created if needed).
        size: Width and height in pixels of 0.5 m; a positive multiple of 64.
        seed: Seed of everything random.
        nir: Add a fourth, near-infrared band to both images.
        origin: Upper-left corner (easting, northing) in EPSG:32614.
        overwrite: Make the world again when ``out_dir`` already holds one; when
            False, a world made there with the same arguments is reused (another raises).

    Returns:
        The paths of the six files, the CRS and the affine transform.

    Raises:
        ParameterError: ``size``, ``seed`` or ``origin`` cannot work.
        OutputExistsError: ``out_dir`` holds another sample world (pass ``overwrite=True``).

    Example:
        >>> import tempfile
        >>> world = make_scene_pair(tempfile.mkdtemp(), size=256, seed=0)
        >>> world.crs.to_epsg(), world.transform.a
        (32614, 0.5)
    """
    _check_arguments(size, seed, origin)
    size, seed, nir = int(size), int(seed), bool(nir)
    origin = (float(origin[0]), float(origin[1]))
    folder = Path(out_dir)
    transform = Affine(PIXEL_SIZE, 0, origin[0], 0, -PIXEL_SIZE, origin[1])
    world = SampleWorld(
        before=folder / "before.tif",
        after=folder / "after.tif",
        change_polygons=folder / "change_polygons.geojson",
        change_mask=folder / "change_mask.tif",
        landcover_before=folder / "landcover_before.tif",
        landcover_after=folder / "landcover_after.tif",
        crs=CRS.from_string(CRS_CODE),
        transform=transform,
    )
    arguments = {"format": _FORMAT, "size": size, "seed": seed, "nir": nir, "origin": list(origin)}
    if reusable(folder / _RECORD, arguments, overwrite, what="a sample world"):
        log.info("reusing the sample world in %s", folder)
        return world
    forget_record(folder / _RECORD)

    layout_seed, change_seed, vehicle_seed, look_seed = np.random.SeedSequence(seed).spawn(4)
    before = make_layout(size, np.random.default_rng(layout_seed))
    after, changes = apply_changes(before, np.random.default_rng(change_seed))
    vehicle_rng = np.random.default_rng(vehicle_seed)
    dates = (park_vehicles(before, vehicle_rng), park_vehicles(after, vehicle_rng))
    look_rng = np.random.default_rng(look_seed)
    noise = NoiseBank.draw(size, look_rng)
    looks = draw_looks(look_rng)
    images = (world.before, world.after)
    grid = {"crs": world.crs, "transform": transform}
    write_images(images, dates, looks, noise, **grid, seed=seed, nir=nir)
    for path, layout in ((world.landcover_before, before), (world.landcover_after, after)):
        landcover = landcover_from_material(layout.material)
        write_geotiff(path, landcover, transform=transform, crs=world.crs)
    write_changes(world.change_polygons, [world.change_mask], [changes], size=size, **grid)
    write_record(folder / _RECORD, {**arguments, "changes": count_kinds(changes)})
    log.info("wrote a %d px sample world with %d changes to %s", size, len(changes), folder)
    return world


def _check_arguments(size: int, seed: int, origin: tuple[float, float]) -> None:
    check_size_and_seed(size, seed)
    try:
        corner = np.asarray(origin, dtype=float)
    except (TypeError, ValueError):
        corner = np.array([np.nan])
    if corner.shape != (2,) or not np.all(np.isfinite(corner)):
        raise ParameterError(f"origin must be (easting, northing) in metres (got {origin!r}).")


def check_size_and_seed(size: int, seed: int) -> None:
    """Raise :class:`ParameterError` unless ``size`` is a positive multiple of 64 and
    ``seed`` a non-negative integer."""
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size <= 0 or size % 64:
        raise ParameterError(
            f"size must be a positive multiple of 64 pixels (got {size!r}); try 512 or 1024."
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer (got {seed!r}).")


def write_images(
    paths: Sequence[Path],
    dates: Sequence[Layout],
    looks: Sequence[DateLook],
    noise: NoiseBank,
    *,
    crs: CRS,
    transform: Affine,
    seed: int,
    nir: bool,
) -> None:
    """Render every date block by block into its GeoTIFF, all written side by side.

    The dates share each block's ground texture (and its random stream, in date order);
    ``looks[k].date`` picks the seasonal and haze fields of ``noise`` and the crop states
    of the parcels that date ``k`` shows.
    """
    size, bands = dates[0].size, 4 if nir else 3
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": bands,
        "dtype": "uint8",
        "crs": crs,
        "transform": transform,
        "tiled": True,
        "blockxsize": min(size, 256),
        "blockysize": min(size, 256),
        "compress": "deflate",
        "predictor": 2,
        "photometric": "RGB",
    }
    if size < 256:  # GeoTIFF tiles must be multiples of 16 and fit the raster's grid
        profile["tiled"] = False
        del profile["blockxsize"], profile["blockysize"]
    with contextlib.ExitStack() as stack:
        temporary = [stack.enter_context(atomic_path(path)) for path in paths]
        files = [stack.enter_context(rasterio.open(tmp, "w", **profile)) for tmp in temporary]
        for dst in files:
            dst.descriptions = _BAND_NAMES[:bands]
        for row in range(0, size, BLOCK):
            for col in range(0, size, BLOCK):
                height, width = min(BLOCK, size - row), min(BLOCK, size - col)
                span = (row - HALO, col - HALO, height + 2 * HALO, width + 2 * HALO)
                block_rng = np.random.default_rng([seed, row // BLOCK, col // BLOCK])
                texture = _dated_texture(make_texture(noise, *span, block_rng), noise, span)
                window = Window(col, row, width, height)
                for layout, look, dst in zip(dates, looks, files, strict=True):
                    image = paint(crop_layout(layout, *span), texture, look, bands=bands)
                    inner = image[HALO : HALO + height, HALO : HALO + width]
                    dst.write(finish(inner, look, block_rng), window=window)


def _dated_texture(texture: Texture, noise: NoiseBank, span: tuple[int, int, int, int]) -> Texture:
    """The texture with the seasonal and haze fields of every date ``noise`` holds.

    :func:`make_texture` samples those of a before and an after date; a time series
    (:mod:`cdtools.synthetic.series`) gives ``noise`` one field of each per date.
    """
    if len(noise.seasonal) <= 2 and len(noise.haze) <= 2:
        return texture
    return dataclasses.replace(
        texture,
        seasonal=texture.seasonal + tuple(f.sample(*span) for f in noise.seasonal[2:]),
        haze=texture.haze + tuple(f.sample(*span) for f in noise.haze[2:]),
    )


def write_changes(
    polygons_path: Path,
    mask_paths: Sequence[Path],
    steps: Sequence[tuple[Change, ...]],
    *,
    size: int,
    crs: CRS,
    transform: Affine,
    step_columns: dict[str, Sequence[Any]] | None = None,
) -> None:
    """Change polygons of every step in one GeoJSON (in the scene CRS), and each step's mask.

    ``steps`` holds the changes between consecutive dates (one step for a pair);
    ``step_columns`` adds columns with one value per step, after ``change_id``. Each
    mask is rasterised from its step's polygons.
    """
    import geopandas as gpd

    polygons = [geometry.to_crs([c.polygon for c in changes], transform) for changes in steps]
    every = [p for step in polygons for p in step]
    columns: dict[str, Any] = {"change_id": np.arange(1, len(every) + 1, dtype=np.int32)}
    for name, values in (step_columns or {}).items():
        columns[name] = [v for v, step in zip(values, steps, strict=True) for _ in step]
    columns["kind"] = [c.kind for changes in steps for c in changes]
    columns["area_m2"] = np.round([p.area for p in every], 2)
    table = gpd.GeoDataFrame(columns, geometry=every, crs=crs)
    with atomic_path(polygons_path) as tmp:
        table.to_file(tmp, driver="GeoJSON", layer="change_polygons")
    for path, step in zip(mask_paths, polygons, strict=True):
        mask = np.zeros((size, size), dtype=np.uint8)
        if step:
            rasterio.features.rasterize([(p, 1) for p in step], out=mask, transform=transform)
        # Described as a change mask, so read_change_map reads it as 0/1, not probability x 255.
        write_geotiff(
            path, mask, transform=transform, crs=crs, descriptions=["change mask (truth)"]
        )


def count_kinds(changes: tuple[Change, ...]) -> dict[str, int]:
    kinds = [c.kind for c in changes]
    return {kind: kinds.count(kind) for kind in sorted(set(kinds))}
