from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import Resampling, calculate_default_transform, reproject

from cdtools.errors import CdtoolsWarning, GridError
from cdtools.io.pair import load_pair
from cdtools.io.raster import write_geotiff
from tests.conftest import bright_centre

UTM = "EPSG:32614"
ORIGIN = (620000.0, 3350000.0)


def scene(path: Path, *, origin=ORIGIN, size=(200, 240), square=(80, 120, 100, 140)) -> Path:
    """A 1 m UTM scene, dark with a bright square at rows/cols ``square``."""
    data = np.full((3, *size), 40, dtype=np.uint8)
    r0, r1, c0, c1 = square
    data[:, r0:r1, c0:c1] = 220
    return write_geotiff(path, data, transform=from_origin(*origin, 1.0, 1.0), crs=UTM)


def to_lonlat(src_path: Path, dst_path: Path) -> Path:
    """The same scene reprojected to EPSG:4326, as a post-event tile might come."""
    with rasterio.open(src_path) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:4326", src.width, src.height, *src.bounds
        )
        out = np.zeros((src.count, height, width), dtype=np.uint8)
        reproject(
            src.read(),
            out,
            src_transform=src.transform,
            src_crs=src.crs,
            dst_transform=transform,
            dst_crs="EPSG:4326",
            resampling=Resampling.nearest,
        )
    return write_geotiff(dst_path, out, transform=transform, crs="EPSG:4326", nodata=0)


def test_dates_in_two_crss_land_on_the_same_map_coordinates(tmp_path: Path) -> None:
    before = scene(tmp_path / "before.tif")
    after = to_lonlat(before, tmp_path / "after_4326.tif")
    pair = load_pair(before, after, grid="before", chunks={"y": 64, "x": 64})
    assert pair.dims == ("time", "band", "y", "x") and pair.shape == (2, 3, 200, 240)
    assert pair.rio.crs.to_epsg() == 32614 and pair.rio.transform() == from_origin(*ORIGIN, 1, 1)
    assert pair.chunks is not None  # lazy
    values = pair.values
    (rb, cb), (ra, ca) = bright_centre(values[0, 0]), bright_centre(values[1, 0])
    assert (rb, cb) == (99.5, 119.5)
    assert abs(ra - rb) < 1.0 and abs(ca - cb) < 1.0


def test_tiles_of_a_date_are_mosaicked(tmp_path: Path) -> None:
    whole = scene(tmp_path / "whole.tif")
    with rasterio.open(whole) as src:
        data, transform = src.read(), src.transform
    tiles = tmp_path / "tiles"
    write_geotiff(tiles / "left.tif", data[:, :, :130], transform=transform, crs=UTM)
    write_geotiff(
        tiles / "right.tif",
        data[:, :, 130:],
        transform=transform * rasterio.Affine.translation(130, 0),
        crs=UTM,
    )
    pair = load_pair(tiles, whole, grid="union")
    assert pair.shape == (2, 3, 200, 240)
    np.testing.assert_array_equal(pair.values[0], pair.values[1])


def test_intersection_and_nodata(tmp_path: Path) -> None:
    before = scene(tmp_path / "before.tif")
    after = scene(tmp_path / "after.tif", origin=(ORIGIN[0] + 100, ORIGIN[1] - 50))
    pair = load_pair(before, after)  # intersection
    assert pair.shape == (2, 3, 150, 140)
    assert pair.rio.transform() == from_origin(ORIGIN[0] + 100, ORIGIN[1] - 50, 1, 1)
    union = load_pair(before, after, grid="union", bands=[0])
    assert union.shape == (2, 1, 250, 340)
    assert np.isnan(union.values[0, 0, -1, -1]) and np.isnan(union.values[1, 0, 0, 0])


def test_dates_that_do_not_overlap_say_where_they_are(tmp_path: Path) -> None:
    before = scene(tmp_path / "before.tif")
    far = scene(tmp_path / "far.tif", origin=(ORIGIN[0] + 5000, ORIGIN[1]))
    with pytest.raises(
        GridError,
        match=r"do not overlap: in EPSG:32614 the before footprint is "
        r"\(620000\.0, 3349800\.0, 620240\.0, 3350000\.0\)",
    ):
        load_pair(before, far)


def test_a_file_that_is_not_a_raster_is_named(tmp_path: Path) -> None:
    from cdtools.errors import RasterError

    before = scene(tmp_path / "before.tif")
    tiles = tmp_path / "after_tiles"
    tiles.mkdir()
    (tiles / "broken.tif").write_text("not an image")
    with pytest.raises(RasterError, match=r"broken\.tif is not a raster GDAL can read"):
        load_pair(before, tiles)


def test_tiles_on_the_grid_are_read_directly_and_match_the_warper(tmp_path: Path) -> None:
    from cdtools.io.mosaic import _offset_on_grid

    whole = scene(tmp_path / "whole.tif")
    with rasterio.open(whole) as src:
        data, transform = src.read(), src.transform
    shifted = write_geotiff(
        tmp_path / "part.tif", data[:, 50:, 30:],
        transform=transform * rasterio.Affine.translation(30, 50), crs=UTM,
    )  # fmt: skip
    half = write_geotiff(
        tmp_path / "half.tif", data[:, 50:, 30:],
        transform=transform * rasterio.Affine.translation(30.5, 50), crs=UTM,
    )  # fmt: skip
    with rasterio.open(shifted) as a, rasterio.open(half) as b:
        assert _offset_on_grid(a, a.crs, transform, (240, 200)) == (50, 30)
        assert _offset_on_grid(b, b.crs, transform, (240, 200)) is None  # half a pixel off
    direct = load_pair(whole, shifted, grid="before").values
    assert np.isnan(direct[1, :, :50]).all() and np.isnan(direct[1, :, :, :30]).all()
    np.testing.assert_array_equal(direct[1, :, 50:, 30:], direct[0, :, 50:, 30:])


def write_png(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(np.moveaxis(image, 0, -1)).save(path)
    return path


def test_images_without_georeferencing_are_paired_pixel_for_pixel(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    before = rng.integers(0, 255, (3, 40, 60), dtype=np.uint8)
    after = before.copy()
    after[:, 10:20, 30:50] = 255
    b, a = write_png(tmp_path / "im1.png", before), write_png(tmp_path / "im2.png", after)
    with pytest.warns(CdtoolsWarning, match="no georeferencing.*outputs carry no CRS"):
        pair = load_pair(b, a, bands=[2, 0])
    assert pair.rio.crs is None and pair.sizes == {"time": 2, "band": 2, "y": 40, "x": 60}
    np.testing.assert_array_equal(pair.values[1], after[[2, 0]].astype(np.float32))
    assert list(pair.time.values) == ["before", "after"]
    with pytest.raises(GridError, match=r"before 60 x 40, after 30 x 40 pixels"):
        load_pair(b, write_png(tmp_path / "half.png", after[:, :, :30]))


def test_one_georeferenced_date_and_one_plain_image_are_refused(tmp_path: Path) -> None:
    georeferenced = scene(tmp_path / "before.tif")
    plain = write_png(tmp_path / "after.png", np.zeros((3, 20, 20), np.uint8))
    with pytest.raises(GridError, match="after image has no CRS but the before image has one"):
        load_pair(georeferenced, plain)
