from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from cdtools.chips.export import export_training_data
from cdtools.chips.writer import ChipWriter
from cdtools.errors import GridError, LabelError, OutputExistsError, ParameterError, RasterError
from cdtools.io.raster import write_geotiff
from tests.conftest import CRS, Pair, make_pair, read_bands


def expected_starts(length: int, tile: int, stride: int) -> int:
    return math.ceil((length - tile) / stride) + 1


def test_chip_counts_follow_tile_and_stride(pair: Pair, tmp_path: Path) -> None:
    for tile, stride in [(64, 32), (64, 64), (100, 50), (128, 20)]:
        out = export_training_data(
            pair.before,
            pair.after,
            pair.polygons,
            tmp_path / f"c{tile}_{stride}",
            chip_size=tile,
            stride=stride,
            progress=False,
        )
        n = expected_starts(300, tile, stride) * expected_starts(200, tile, stride)
        summary = json.loads((out / "export.json").read_text())
        assert summary["counts"]["chips"] == n
        for folder in ("images_before", "images_after", "labels"):
            assert len(list((out / folder).glob("*.tif"))) == n
        index = gpd.read_file(out / "chips.geojson")
        assert len(index) == n and index.crs.to_epsg() == 32614


def test_chips_are_georeferenced_windows_of_the_scene(pair: Pair, tmp_path: Path) -> None:
    out = export_training_data(
        pair.before,
        pair.after,
        pair.polygons,
        tmp_path / "chips",
        chip_size=64,
        stride=32,
        progress=False,
    )
    index = gpd.read_file(out / "chips.geojson")
    scene = read_bands(pair.after)
    chip = index[(index["row"] == 32) & (index["col"] == 64)].iloc[0]
    with rasterio.open(out / "images_after" / chip["file"]) as src:
        assert src.crs.to_epsg() == 32614
        assert src.transform == pair.transform @ Affine.translation(64, 32)
        np.testing.assert_array_equal(src.read(), scene[:, 32:96, 64:128])
    left, bottom, right, top = chip.geometry.bounds
    assert (left, top) == pair.transform @ (64, 32)
    assert (right - left, top - bottom) == (32.0, 32.0)


def test_labels_match_the_polygon_and_edge_chips_are_padded(pair: Pair, tmp_path: Path) -> None:
    out = export_training_data(
        pair.before,
        pair.after,
        pair.polygons,
        tmp_path / "chips",
        chip_size=64,
        stride=32,
        progress=False,
    )
    index = gpd.read_file(out / "chips.geojson")
    truth = read_bands(pair.mask)[0]
    inner = index[(index["row"] == 64) & (index["col"] == 32)].iloc[0]
    np.testing.assert_array_equal(
        read_bands(out / "labels" / inner["file"])[0], truth[64:128, 32:96]
    )
    assert inner["change_fraction"] == pytest.approx((truth[64:128, 32:96] == 1).mean())
    corner = index[(index["row"] == 256) & (index["col"] == 160)].iloc[0]
    label = read_bands(out / "labels" / corner["file"])[0]
    image = read_bands(out / "images_before" / corner["file"])
    assert (label[:44, :40] != 255).all()
    assert (label[44:, :] == 255).all() and (label[:, 40:] == 255).all()
    assert (image[:, 44:, :] == 0).all() and (image[:, :, 40:] == 0).all()


def test_levir_layout_uses_a_b_label_and_0_255(pair: Pair, tmp_path: Path) -> None:
    out = export_training_data(
        pair.before,
        pair.after,
        pair.polygons,
        tmp_path / "chips",
        chip_size=100,
        stride=100,
        layout="levir",
        progress=False,
    )
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["A", "B", "label"]
    values = np.unique(np.concatenate([read_bands(p).ravel() for p in (out / "label").iterdir()]))
    assert set(values.tolist()) == {0, 255}
    assert json.loads((out / "export.json").read_text())["label_values"]["change"] == 255


def test_label_raster_and_min_change_fraction(pair: Pair, tmp_path: Path) -> None:
    out = export_training_data(
        pair.before,
        pair.after,
        pair.mask,
        tmp_path / "chips",
        chip_size=50,
        stride=50,
        min_change_fraction=0.5,
        progress=False,
    )
    summary = json.loads((out / "export.json").read_text())
    # The 50x50 change square fills exactly one 50x50 chip.
    assert summary["counts"]["chips"] == 1
    assert summary["counts"]["skipped_low"] == 6 * 4 - 1
    assert summary["label_source"]["convention"] == "0/1 (255 = ignore)"


def test_png_pairs_without_georeferencing(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (3, 120, 90), dtype=np.uint8)
    gt = np.zeros((1, 120, 90), dtype=np.uint8)
    gt[0, 10:30, 10:30] = 255
    for name, data in (("im1.png", image), ("im2.png", image[::-1].copy()), ("gt.png", gt)):
        with rasterio.open(
            tmp_path / name,
            "w",
            driver="PNG",
            count=data.shape[0],
            height=120,
            width=90,
            dtype="uint8",
        ) as dst:
            dst.write(data)
    out = export_training_data(
        tmp_path / "im1.png",
        tmp_path / "im2.png",
        tmp_path / "gt.png",
        tmp_path / "chips",
        chip_size=64,
        stride=32,
        image_format="png",
        progress=False,
    )
    index = gpd.read_file(out / "chips.geojson")  # pixel coordinates: x = column, y = row
    assert json.loads((out / "export.json").read_text())["crs"] is None
    assert len(index) == expected_starts(120, 64, 32) * expected_starts(90, 64, 32)
    first = index[(index["row"] == 0) & (index["col"] == 0)].iloc[0]
    assert first.geometry.bounds == (0.0, 0.0, 64.0, 64.0)
    label = read_bands(out / "labels" / first["file"])[0]
    assert label[10:30, 10:30].min() == 1 and label.sum() == 400
    assert not list(out.rglob("*.aux.xml"))


def test_bad_options(pair: Pair, tmp_path: Path) -> None:
    args = (pair.before, pair.after, pair.polygons, tmp_path / "chips")
    with pytest.raises(ParameterError, match="stride must be a positive"):
        export_training_data(*args, stride=0)
    with pytest.raises(ParameterError, match="larger than the scene"):
        export_training_data(*args, chip_size=256)
    with pytest.raises(ParameterError, match="layout"):
        export_training_data(*args, layout="coco")
    assert not (tmp_path / "chips").exists()


def test_labels_empty_or_elsewhere(pair: Pair, tmp_path: Path) -> None:
    empty = tmp_path / "empty.geojson"
    gpd.GeoDataFrame({"kind": []}, geometry=[], crs=CRS).to_file(empty)
    with pytest.raises(LabelError, match="no features"):
        export_training_data(pair.before, pair.after, empty, tmp_path / "c", chip_size=64)
    far = tmp_path / "far.geojson"
    gpd.read_file(pair.polygons).translate(0.5, 0.0).to_file(far)  # half a degree east
    with pytest.raises(LabelError, match="fall inside the imagery"):
        export_training_data(pair.before, pair.after, far, tmp_path / "c", chip_size=64)
    assert not (tmp_path / "c").exists()


def test_pair_that_does_not_match(pair: Pair, tmp_path: Path) -> None:
    other = make_pair(tmp_path / "other", bands=4)
    with pytest.raises(GridError, match="3 bands but after has 4"):
        export_training_data(pair.before, other.after, pair.polygons, tmp_path / "c")
    moved = tmp_path / "moved.tif"
    write_geotiff(
        moved,
        read_bands(pair.after),
        transform=Affine.translation(0, 1e5) @ pair.transform,
        crs=CRS,
    )
    with pytest.raises(GridError, match="do not overlap"):
        export_training_data(pair.before, moved, pair.polygons, tmp_path / "c")
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    with pytest.raises(RasterError):
        export_training_data(pair.before, broken, pair.polygons, tmp_path / "c")


def test_existing_output_is_refused_then_replaced_whole(pair: Pair, tmp_path: Path) -> None:
    out = tmp_path / "chips"
    export_training_data(
        pair.before, pair.after, pair.polygons, out, chip_size=100, stride=100, progress=False
    )
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        export_training_data(pair.before, pair.after, pair.polygons, out, chip_size=64)
    export_training_data(
        pair.before,
        pair.after,
        pair.polygons,
        out,
        chip_size=64,
        stride=64,
        overwrite=True,
        progress=False,
    )
    assert json.loads((out / "export.json").read_text())["chip_size"] == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chips", "scene"]
    user = tmp_path / "notes"
    user.mkdir()
    (user / "thesis.docx").write_text("precious")
    with pytest.raises(OutputExistsError, match="not chips"):
        export_training_data(pair.before, pair.after, pair.polygons, user, overwrite=True)
    assert (user / "thesis.docx").read_text() == "precious"


def test_interrupted_export_leaves_the_old_one_untouched(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "chips"
    export_training_data(
        pair.before, pair.after, pair.polygons, out, chip_size=100, stride=100, progress=False
    )
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    calls = {"n": 0}
    original = ChipWriter.image

    def failing(self, path, data, transform):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError("disk full")
        original(self, path, data, transform)

    monkeypatch.setattr(ChipWriter, "image", failing)
    with pytest.raises(OSError, match="disk full"):
        export_training_data(
            pair.before,
            pair.after,
            pair.polygons,
            out,
            chip_size=64,
            stride=32,
            overwrite=True,
            progress=False,
        )
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chips", "scene"]
