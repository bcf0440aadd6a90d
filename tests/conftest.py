"""Small hand-made rasters whose geometry every test can work out by hand."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import Affine, from_origin
from shapely.geometry import box

from cdtools.io.raster import write_geotiff

CRS = "EPSG:32614"
ORIGIN = (620000.0, 3350000.0)
PIXEL = 0.5


@dataclass
class Pair:
    before: Path
    after: Path
    polygons: Path
    mask: Path
    transform: Affine
    height: int
    width: int


def make_pair(
    folder: Path,
    *,
    height: int = 300,
    width: int = 200,
    bands: int = 3,
    square: tuple[int, int, int, int] = (50, 100, 50, 100),
    seed: int = 0,
) -> Pair:
    """A random uint8 pair where the after date is bright inside ``square`` (rows, cols).

    The change polygons hold that one square, written in EPSG:4326 on purpose.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    transform = from_origin(*ORIGIN, PIXEL, PIXEL)
    before = rng.integers(0, 200, (bands, height, width), dtype=np.uint8)
    after = before.copy()
    r0, r1, c0, c1 = square
    after[:, r0:r1, c0:c1] = 255
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[r0:r1, c0:c1] = 1
    paths = {name: folder / f"{name}.tif" for name in ("before", "after", "mask")}
    write_geotiff(paths["before"], before, transform=transform, crs=CRS)
    write_geotiff(paths["after"], after, transform=transform, crs=CRS)
    write_geotiff(paths["mask"], mask, transform=transform, crs=CRS)
    x0, y0 = transform @ (c0, r1)
    x1, y1 = transform @ (c1, r0)
    polygons = folder / "change.geojson"
    frame = gpd.GeoDataFrame({"kind": ["new_building"]}, geometry=[box(x0, y0, x1, y1)], crs=CRS)
    frame.to_crs("EPSG:4326").to_file(polygons)
    return Pair(paths["before"], paths["after"], polygons, paths["mask"], transform, height, width)


def read_bands(path: Path) -> np.ndarray:
    """Every band of a raster, ``(bands, h, w)``."""
    with rasterio.open(path) as src:
        return src.read()


def bright_centre(image: np.ndarray) -> tuple[float, float]:
    """Row and column of the centre of the pixels brighter than 130 (the sample square)."""
    rows, cols = np.nonzero(np.nan_to_num(image) > 130)
    return rows.mean(), cols.mean()


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """Give every test the environment it started with back. A dask LocalCluster sets
    OMP_NUM_THREADS=1 (and MALLOC_TRIM_THRESHOLD_) in the process that starts it and
    leaves them set: every notebook kernel started after it then ran torch on one thread,
    twice as slowly."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    return make_pair(tmp_path / "scene")


@pytest.fixture(scope="module")
def tiny_chips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Nine 64-pixel chips of a 128 x 128 pair with one changed square."""
    from cdtools.chips.export import export_training_data

    folder = tmp_path_factory.mktemp("tiny")
    pair = make_pair(folder / "scene", height=128, width=128, square=(30, 70, 40, 90))
    return export_training_data(
        pair.before, pair.after, pair.polygons, folder / "chips",
        chip_size=64, stride=32, progress=False,
    )  # fmt: skip


# Three classes a network tells apart in a few steps: the colour of the whole patch.
EASY = {"Blue": (40, 60, 200), "Green": (40, 170, 60), "Red": (200, 50, 40)}


def write_easy_patches(folder: Path, *, n: int = 16, size: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name, colour in EASY.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            noise = rng.normal(0, 25, (size, size, 3))
            image = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(image).save(folder / name / f"{name}_{i}.png")
    return folder
