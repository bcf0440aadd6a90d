"""masks_to_labels: sparse change / unchanged sample masks to one 0/1/255 label raster."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine

from cdtools.chips.data import prepare_data
from cdtools.chips.export import export_training_data
from cdtools.chips.sparse_labels import masks_to_labels
from cdtools.errors import CdtoolsWarning, GridError, LabelError, OutputExistsError, ParameterError
from cdtools.io.raster import write_geotiff
from tests.test_real_data import REAL_DATA, TAIZHOU

CRS = "EPSG:32651"
TRANSFORM = Affine(30.0, 0.0, 203325.0, 0.0, -30.0, 3604935.0)


def write_image(path: Path, data: np.ndarray, driver: str) -> Path:
    """Write a plain (not georeferenced) image, e.g. a BMP or PNG mask."""
    data = data[np.newaxis] if data.ndim == 2 else data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path,
            "w",
            driver=driver,
            count=data.shape[0],
            height=data.shape[1],
            width=data.shape[2],
            dtype="uint8",
        ) as dst:
            dst.write(data)
    return path


def make_image(path: Path, *, height: int = 40, width: int = 30, bands: int = 6) -> Path:
    """A random uint16 multispectral GeoTIFF, like a Landsat date."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, (bands, height, width), dtype=np.uint16)
    return write_geotiff(path, data, transform=TRANSFORM, crs=CRS)


def boxes(shape: tuple[int, int], *rects: tuple[int, int, int, int]) -> np.ndarray:
    """A 0/255 uint8 mask marking the rectangles (r0, r1, c0, c1)."""
    mask = np.zeros(shape, dtype=np.uint8)
    for r0, r1, c0, c1 in rects:
        mask[r0:r1, c0:c1] = 255
    return mask


def read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(1), {
            "crs": src.crs,
            "transform": src.transform,
            "dtype": src.dtypes[0],
            "count": src.count,
            "nodata": src.nodata,
        }


def test_values_land_where_the_masks_mark_pixels_on_the_grid_of_like(tmp_path: Path) -> None:
    like = make_image(tmp_path / "before.tif")
    change = write_image(tmp_path / "change.bmp", boxes((40, 30), (2, 5, 3, 7)), "BMP")
    # a 3-band (RGB) bitmap marking its samples in red only: any band above 0 counts
    red = np.zeros((3, 40, 30), dtype=np.uint8)
    red[0, 20:30, 10:25] = 200
    unchanged = write_image(tmp_path / "unchanged.bmp", red, "BMP")

    out = masks_to_labels(change, unchanged, tmp_path / "labels.tif", like=like)

    labels, meta = read(out)
    assert out == tmp_path / "labels.tif"
    expected = np.full((40, 30), 255, dtype=np.uint8)
    expected[20:30, 10:25] = 0
    expected[2:5, 3:7] = 1
    np.testing.assert_array_equal(labels, expected)
    assert meta["crs"].to_epsg() == 32651 and meta["transform"] == TRANSFORM
    assert meta["dtype"] == "uint8" and meta["count"] == 1 and meta["nodata"] == 255
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file


def test_png_and_geotiff_masks_of_0_1_without_like(tmp_path: Path) -> None:
    change = np.zeros((40, 30), dtype=np.uint8)
    change[0, 0] = 1
    write_geotiff(tmp_path / "change.tif", change, transform=TRANSFORM, crs=CRS)
    unchanged = write_image(tmp_path / "unchanged.png", boxes((40, 30), (39, 40, 29, 30)), "PNG")

    labels, meta = read(masks_to_labels(tmp_path / "change.tif", unchanged, tmp_path / "l.tif"))

    assert labels[0, 0] == 1 and labels[39, 29] == 0 and (labels == 255).sum() == 40 * 30 - 2
    assert meta["crs"].to_epsg() == 32651 and meta["transform"] == TRANSFORM  # from `change`


def test_an_existing_output_is_replaced_only_with_overwrite(tmp_path: Path) -> None:
    change = write_image(tmp_path / "c.bmp", boxes((40, 30), (0, 2, 0, 2)), "BMP")
    unchanged = write_image(tmp_path / "u.bmp", boxes((40, 30), (10, 12, 0, 2)), "BMP")
    out = tmp_path / "labels.tif"
    out.write_bytes(b"not yet a raster")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        masks_to_labels(change, unchanged, out)
    assert out.read_bytes() == b"not yet a raster"
    masks_to_labels(change, unchanged, out, overwrite=True)
    assert read(out)[0][0, 0] == 1
    with pytest.raises(ParameterError, match=r"labels\.tif"):
        masks_to_labels(change, unchanged, tmp_path / "labels.png")


def test_a_mask_that_marks_no_pixel_or_every_pixel_is_refused(tmp_path: Path) -> None:
    like = make_image(tmp_path / "before.tif")
    marked = write_image(tmp_path / "unchanged.bmp", boxes((40, 30), (0, 5, 0, 5)), "BMP")
    empty = write_image(tmp_path / "change.bmp", np.zeros((40, 30), np.uint8), "BMP")
    with pytest.raises(LabelError, match=r"change\.bmp marks no pixel"):
        masks_to_labels(empty, marked, tmp_path / "labels.tif", like=like)
    full = write_image(tmp_path / "inverted.bmp", np.full((40, 30), 255, np.uint8), "BMP")
    with pytest.raises(LabelError, match=r"inverted\.bmp marks every pixel.*invert it"):
        masks_to_labels(marked, full, tmp_path / "labels.tif", like=like)
    assert not (tmp_path / "labels.tif").exists()


def test_pixels_marked_both_ways_are_ignored_with_a_warning(tmp_path: Path) -> None:
    change = write_image(tmp_path / "change.bmp", boxes((40, 30), (0, 4, 0, 4)), "BMP")
    unchanged = write_image(tmp_path / "unchanged.bmp", boxes((40, 30), (3, 10, 3, 10)), "BMP")
    with pytest.warns(
        CdtoolsWarning, match=r"both mark 1 pixel\(s\), the first at row 3, column 3"
    ):
        out = masks_to_labels(change, unchanged, tmp_path / "labels.tif")
    labels = read(out)[0]
    assert labels[3, 3] == 255 and (labels == 1).sum() == 15 and (labels == 0).sum() == 48
    with pytest.raises(LabelError, match=r"every pixel change\.bmp marks is also marked"):
        masks_to_labels(change, change, tmp_path / "same.tif")


def test_sizes_and_grids_must_match(tmp_path: Path) -> None:
    like = make_image(tmp_path / "before.tif")
    change = write_image(tmp_path / "change.bmp", boxes((40, 30), (0, 4, 0, 4)), "BMP")
    small = write_image(tmp_path / "small.bmp", boxes((20, 30), (0, 4, 9, 14)), "BMP")
    with pytest.raises(GridError, match=r"change\.bmp is 30x40 but small\.bmp is 30x20"):
        masks_to_labels(change, small, tmp_path / "labels.tif")
    big = make_image(tmp_path / "big.tif", height=41)
    with pytest.raises(GridError, match=r"mask change\.bmp is 30x40 but big\.tif is 30x41"):
        masks_to_labels(change, change, tmp_path / "labels.tif", like=big)
    moved = tmp_path / "moved.tif"
    elsewhere = Affine.translation(900.0, 0.0) @ TRANSFORM
    write_geotiff(moved, boxes((40, 30), (9, 12, 9, 12)), transform=elsewhere, crs=CRS)
    with pytest.raises(GridError, match=r"moved\.tif is georeferenced .* another grid"):
        masks_to_labels(change, moved, tmp_path / "labels.tif", like=like)
    assert not (tmp_path / "labels.tif").exists()


def test_sparse_labels_export_and_load_with_255_outside_the_samples(tmp_path: Path) -> None:
    before = make_image(tmp_path / "before.tif", height=96, width=96)
    after = make_image(tmp_path / "after.tif", height=96, width=96)
    change = write_image(
        tmp_path / "change.bmp", boxes((96, 96), (5, 10, 5, 10), (40, 44, 70, 80)), "BMP"
    )
    unchanged = write_image(
        tmp_path / "unchanged.bmp",
        boxes((96, 96), (12, 20, 2, 12), (50, 60, 50, 60), (80, 90, 10, 20)),
        "BMP",
    )
    labels = masks_to_labels(change, unchanged, tmp_path / "labels.tif", like=before)
    chips = export_training_data(
        before, after, labels, tmp_path / "chips", chip_size=32, stride=32, progress=False
    )

    summary = json.loads((chips / "export.json").read_text())
    assert summary["label_source"] == {"kind": "raster", "convention": "0/1 (255 = ignore)"}
    # 3 x 3 chips; only those holding a sample are kept: (0,0), (1,2), (1,1), (2,0)
    assert summary["counts"]["candidates"] == 9 and summary["counts"]["chips"] == 4
    assert summary["counts"]["skipped_unlabelled"] == 5
    values = []
    for chip in sorted((chips / "labels").iterdir()):
        with rasterio.open(chip) as src:
            values.append(src.read(1))
        with rasterio.open(chips / "images_before" / chip.name) as src:
            assert src.count == 6 and src.crs.to_epsg() == 32651
    stacked = np.stack(values)
    assert set(np.unique(stacked).tolist()) == {0, 1, 255}
    assert (stacked == 1).sum() == 25 + 40 and (stacked == 0).sum() == 80 + 100 + 100
    assert (stacked == 255).mean() > 0.7  # most pixels are unlabelled, and ignored

    dls = prepare_data(chips, chip_size=32, batch_size=2, val_split_pct=0.25, seed=0)
    (b, a), mask = dls.one_batch()
    assert b.shape == a.shape == (2, 6, 32, 32) and mask.shape == (2, 32, 32)
    assert set(mask.unique().tolist()) <= {0, 1, 255} and (mask == 255).any()
    assert dls.n_bands == 6 and len(dls.train_ds) == 3 and len(dls.valid_ds) == 1


@pytest.mark.real_data
@pytest.mark.skipif(not TAIZHOU.exists(), reason=f"Taizhou not found under {REAL_DATA}")
def test_taizhou_sample_masks_export_six_band_chips(tmp_path: Path) -> None:
    labels = masks_to_labels(
        TAIZHOU / "change.bmp",
        TAIZHOU / "unchanged.bmp",
        tmp_path / "taizhou_labels.tif",
        like=TAIZHOU / "2000TM",
    )
    values, meta = read(labels)
    assert meta["crs"].to_epsg() == 32651 and values.shape == (400, 400)
    n_change, n_unchanged = int((values == 1).sum()), int((values == 0).sum())
    assert n_change > 1000 and n_unchanged > 1000 and (values == 255).mean() > 0.8
    chips = export_training_data(
        TAIZHOU / "2000TM",
        TAIZHOU / "2003TM",
        labels,
        tmp_path / "chips",
        chip_size=64,
        stride=32,
        progress=False,
    )
    counts = json.loads((chips / "export.json").read_text())["counts"]
    label_chips = sorted((chips / "labels").iterdir())
    assert counts["chips"] == len(label_chips) > 0
    stacked = []
    for chip in label_chips:
        with rasterio.open(chip) as src:
            stacked.append(src.read(1))
        with rasterio.open(chips / "images_before" / chip.name) as src:
            assert src.count == 6 and src.crs.to_epsg() == 32651
    stacked = np.stack(stacked)
    assert (stacked == 0).any() and (stacked == 1).any() and (stacked == 255).mean() > 0.5
    print(
        f"Taizhou: {n_change} change, {n_unchanged} unchanged pixels; "
        f"{counts['chips']} of {counts['candidates']} chips exported"
    )
