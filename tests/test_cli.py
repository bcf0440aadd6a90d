from __future__ import annotations

import json
import logging
import types
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import Affine, from_origin
from rasterio.windows import Window

import cdtools
from cdtools.cli import main, resolve_date
from cdtools.errors import CdtoolsWarning
from cdtools.io.raster import write_geotiff
from cdtools.samples import sample_detector
from cdtools.synthetic import SampleWorld, make_scene_pair
from tests.conftest import CRS, ORIGIN, PIXEL, Pair

#: Scene inference options that keep the CLI tests quick: 4 chunks of 2 x 2 tiles each.
QUICK = ["--tile", "128", "--overlap", "32", "--chunk", "160", "--precision", "fp32"]


def test_export_train_predict_from_the_command_line(
    pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chips = tmp_path / "chips"
    args = [str(pair.before), str(pair.after), str(pair.polygons), str(chips)]
    assert main(["export", *args, "--chip-size", "64", "--stride", "64", "--no-progress"]) == 0
    assert json.loads((chips / "export.json").read_text())["counts"]["chips"] == 5 * 4
    model = tmp_path / "model"
    assert (
        main(
            [
                "train",
                str(chips),
                "--pretrained",
                "false",
                "--epochs",
                "1",
                "--lr",
                "1e-3",
                "--chip-size",
                "64",
                "--batch-size",
                "4",
                "--out",
                str(model),
            ]
        )
        == 0
    )
    assert (model / "model.json").exists()
    out = tmp_path / "change.tif"
    assert (
        main(
            [
                "predict",
                str(pair.before),
                str(pair.after),
                "--model",
                str(model),
                "--out",
                str(out),
                "--mask",
                "--no-progress",
            ]
        )
        == 0
    )
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32614 and src.shape == (300, 200) and src.nodata == 255
        assert set(src.read(1).ravel().tolist()) <= {0, 1}  # no nodata in this pair


def test_user_errors_are_one_line_with_exit_status_2(
    pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(pair.before), str(pair.after), str(pair.polygons), str(tmp_path / "c")]
    assert main(["export", *args, "--stride", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cdtools: error: stride must be a positive") and "\n" not in err


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample detector as a model package, as a user would pass it to --model."""
    return sample_detector().save(tmp_path_factory.mktemp("cli") / "model")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SampleWorld:
    return make_scene_pair(tmp_path_factory.mktemp("cli") / "world", size=320, seed=21)


@pytest.fixture(scope="module")
def reference(
    model: Path, world: SampleWorld, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, np.ndarray]:
    """`cdtools predict before.tif after.tif` on dask's threaded scheduler, and its pixels."""
    out = tmp_path_factory.mktemp("cli") / "change.tif"
    args = [str(world.before), str(world.after), "--model", str(model), "--out", str(out)]
    assert main(["predict", *args, *QUICK, "--no-progress"]) == 0
    with rasterio.open(out) as src:
        return out, src.read(1)


def test_predict_files_writes_a_georeferenced_cog(
    reference: tuple[Path, np.ndarray], world: SampleWorld, model: Path
) -> None:
    out, change = reference
    with rasterio.open(out) as src, rasterio.open(world.before) as before:
        assert src.crs == before.crs and src.transform == before.transform
        assert src.shape == (320, 320) and src.dtypes == ("uint8",) and src.nodata == 255
        assert src.profile["tiled"] and "probability" in src.descriptions[0]
    assert change.max() < 255 and change.std() > 5  # every pixel valid, a map with structure
    truth = rasterio.open(world.change_mask).read(1) == 1
    found = change / 255 > json.loads((model / "model.json").read_text())["threshold"]
    assert 2 * (found & truth).sum() / (found.sum() + truth.sum()) > 0.4  # F1 of change


def test_predict_with_onnxruntime_writes_torchs_map(
    reference: tuple[Path, np.ndarray], world: SampleWorld, model: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    out = tmp_path / "change.tif"
    args = [str(world.before), str(world.after), "--model", str(model), "--out", str(out)]
    assert main(["predict", *args, *QUICK, "--runtime", "onnxruntime", "--no-progress"]) == 0
    with rasterio.open(out) as src:
        assert np.abs(src.read(1).astype(int) - reference[1]).max() <= 1


def test_predict_a_plain_png_pair_without_georeferencing(
    reference: tuple[Path, np.ndarray],
    world: SampleWorld,
    model: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from PIL import Image

    pngs = []
    for name, path in (("im1", world.before), ("im2", world.after)):
        with rasterio.open(path) as src:
            image = np.moveaxis(src.read(), 0, -1)
        pngs.append(str(tmp_path / f"{name}.png"))
        Image.fromarray(image).save(pngs[-1])
    out = tmp_path / "change.tif"
    args = [*pngs, "--model", str(model), "--out", str(out), "--bands", "0,1,2"]
    with pytest.warns(CdtoolsWarning, match="no georeferencing"):
        assert main(["predict", *args, *QUICK, "--no-progress"]) == 0
    with rasterio.open(out) as src:
        assert src.crs is None and src.shape == (320, 320)
        change = src.read(1)
    # The same pixels as the georeferenced pair's map: pixel for pixel, no resampling.
    assert np.abs(change.astype(int) - reference[1]).max() <= 1
    bad = [*pngs, "--model", str(model), "--out", str(tmp_path / "bad.tif"), "--bands", "0,1,5"]
    assert main(["predict", *bad, "--no-progress"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after load_pair's warning
    assert last.startswith("cdtools: error: bands [5] do not exist")
    with pytest.raises(SystemExit):  # argparse: not a list of integers
        main(["predict", *pngs, "--model", str(model), "--out", "x.tif", "--bands", "red"])


def test_predict_a_folder_of_tiles_and_a_pattern(
    reference: tuple[Path, np.ndarray], world: SampleWorld, model: Path, tmp_path: Path
) -> None:
    for name, path in (("before", world.before), ("after", world.after)):
        (tmp_path / name).mkdir()
        with rasterio.open(path) as src:
            for row in (0, 160):
                for col in (0, 160):
                    window = Window(col, row, 160, 160)
                    write_geotiff(
                        tmp_path / name / f"tile_{row}_{col}.tif", src.read(window=window),
                        transform=src.window_transform(window), crs=src.crs,
                    )  # fmt: skip
    out = tmp_path / "change.tif"
    after = str(tmp_path / "after" / "tile_*.tif")
    args = [str(tmp_path / "before"), after, "--model", str(model), "--out", str(out)]
    assert main(["predict", *args, *QUICK, "--no-progress"]) == 0
    with rasterio.open(out) as src, rasterio.open(reference[0]) as whole:
        assert src.crs == whole.crs and src.transform == whole.transform
        np.testing.assert_array_equal(src.read(1), reference[1])  # tiles = the whole scene


def test_predict_on_a_local_cluster_of_two_workers(
    reference: tuple[Path, np.ndarray], world: SampleWorld, model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mask.tif"
    args = [str(world.before), str(world.after), "--model", str(model), "--out", str(out)]
    assert main(["predict", *args, *QUICK, "--mask", "--workers", "2", "--no-progress"]) == 0
    threshold = json.loads((model / "model.json").read_text())["threshold"]
    with rasterio.open(out) as src:
        assert src.nodata == 255 and "mask" in src.descriptions[0]
        np.testing.assert_array_equal(src.read(1), reference[1] / 255 > threshold)


def test_a_pattern_that_matches_nothing_is_one_clear_line(
    model: Path, world: SampleWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pattern = str(tmp_path / "nowhere" / "*.tif")
    out = tmp_path / "change.tif"
    args = [pattern, str(world.after), "--model", str(model), "--out", str(out)]
    assert main(["predict", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cdtools: error: no file matches") and "\n" not in err
    assert pattern in err and not out.exists()


def test_an_existing_output_is_kept_without_overwrite(
    reference: tuple[Path, np.ndarray],
    world: SampleWorld,
    model: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = reference[0]
    before = out.read_bytes(), out.stat().st_mtime_ns
    args = [str(world.after), str(world.before), "--model", str(model), "--out", str(out)]
    assert main(["predict", *args, *QUICK]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"cdtools: error: {out} exists; pass --overwrite to replace it."
    assert (out.read_bytes(), out.stat().st_mtime_ns) == before


def test_resolve_date_takes_files_folders_lists_and_patterns(tmp_path: Path) -> None:
    for name in ("b.tif", "a.tif", "c.TIF"):
        (tmp_path / name).touch()
    assert resolve_date(str(tmp_path)) == tmp_path
    assert resolve_date(str(tmp_path / "b.tif")) == tmp_path / "b.tif"
    assert resolve_date(str(tmp_path / "*.tif")) == [tmp_path / "a.tif", tmp_path / "b.tif"]
    listed = resolve_date(f"{tmp_path / 'b.tif'}, {tmp_path / '*.T*'}")
    assert listed == [tmp_path / "b.tif", tmp_path / "c.TIF"]


def write_change_map(path: Path, *, shape: tuple[int, int] = (280, 160), offset=(10, 20)) -> Path:
    """A uint8 change map (255: no data) on a window of conftest's pair grid, starting at
    ``offset`` (rows, columns): a 30 x 30 px region (225 m²) of p = 0.8 and a 10 x 20 px one
    (50 m²) of p = 0.6."""
    coded = np.zeros(shape, dtype=np.uint8)
    coded[50:80, 40:70] = 204  # in the after date's bright square of conftest's pair
    coded[200:210, 100:120] = 153
    coded[270:, :] = 255  # no data
    transform = from_origin(*ORIGIN, PIXEL, PIXEL) @ Affine.translation(offset[1], offset[0])
    return write_geotiff(path, coded, transform=transform, crs=CRS, nodata=255)


def test_regions_writes_polygons_and_a_one_line_summary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    change = write_change_map(tmp_path / "change.tif")
    out = tmp_path / "regions.gpkg"
    with caplog.at_level(logging.INFO, logger="cdtools"):
        assert main(["regions", str(change), "--out", str(out)]) == 0
    frame = gpd.read_file(out)
    assert frame.crs == CRS and frame["id"].tolist() == [1, 2]
    assert frame["area_m2"].tolist() == [225 - 1, 50 - 1]  # the opening cuts 4 corner pixels
    assert frame.geometry.area.tolist() == pytest.approx(frame["area_m2"].tolist())
    assert "2 change regions (273 m2 in all, threshold 0.50) written to" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["change.tif", "regions.gpkg"]
    geojson = tmp_path / "big.geojson"
    args = ["--threshold", "0.7", "--min-area", "100", "--closing", "0", "--opening", "0"]
    assert main(["regions", str(change), "--out", str(geojson), *args]) == 0
    frame = gpd.read_file(geojson)
    assert frame.crs == CRS and frame["area_m2"].tolist() == [225.0]
    assert frame["mean_prob"].tolist() == pytest.approx([0.8])


def test_regions_of_a_predicted_map_use_the_models_threshold(
    reference: tuple[Path, np.ndarray], model: Path, tmp_path: Path
) -> None:
    threshold = json.loads((model / "model.json").read_text())["threshold"]
    with rasterio.open(reference[0]) as src:
        assert float(src.tags()["threshold"]) == threshold  # written by `cdtools predict`
    out = tmp_path / "regions.geojson"
    assert main(["regions", str(reference[0]), "--out", str(out)]) == 0
    frame = gpd.read_file(out)
    assert len(frame) > 0 and frame.crs == CRS and (frame["area_m2"] >= 20).all()
    assert (frame["max_prob"] > threshold).all()


def test_regions_keeps_an_existing_output_and_names_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change = write_change_map(tmp_path / "change.tif")
    out = tmp_path / "regions.geojson"
    out.write_text("{}")
    cases = {
        (): f"{out} exists; pass --overwrite to replace it.",
        ("--overwrite", "--classifier", "model"): "--classifier needs --before and --after",
        ("--overwrite", "--before", str(change)): "--before and --after are read only with",
    }
    for extra, message in cases.items():
        assert main(["regions", str(change), "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("cdtools: error: ") and message in err and "\n" not in err
    assert out.read_text() == "{}"
    assert main(["regions", str(change), "--out", str(tmp_path / "regions.shp")]) == 2
    assert "must end in .gpkg or .geojson" in capsys.readouterr().err
    assert main(["regions", str(change), "--out", str(out), "--overwrite"]) == 0
    assert len(gpd.read_file(out)) == 2


def test_regions_with_a_classifier_reads_patches_on_the_change_maps_grid(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The classifier path against cdtools.landcover.classifier's agreed interface, with a stand-in
    module: the patches it gets must be the pair's pixels around each region."""
    seen: dict[str, Any] = {}

    class StandIn:
        spec = types.SimpleNamespace(input_size=16)

        @classmethod
        def from_model(cls, path: Path) -> StandIn:
            seen["model"] = path
            return cls()

    def classify_patches(patches: list[Any], classifier: StandIn) -> pd.DataFrame:
        seen["patches"] = patches
        bright = [bool(np.nanmean(p.after) > np.nanmean(p.before) + 50) for p in patches]
        return pd.DataFrame(
            {
                "id": [p.id for p in patches],
                "class_before": "AnnualCrop",
                "confidence_before": 0.9,
                "class_after": ["Industrial" if b else "AnnualCrop" for b in bright],
                "confidence_after": 0.8,
            }
        )

    monkeypatch.setattr(cdtools, "LandCoverClassifier", StandIn, raising=False)
    monkeypatch.setattr(cdtools, "classify_patches", classify_patches, raising=False)
    change = write_change_map(tmp_path / "change.tif")  # a window of the pair's grid
    out = tmp_path / "regions.gpkg"
    dates = ["--before", str(pair.before), "--after", str(pair.after)]
    args = ["--classifier", str(tmp_path / "model"), *dates]  # patches of its input size
    assert main(["regions", str(change), "--out", str(out), *args]) == 0
    assert seen["model"] == tmp_path / "model"
    frame = gpd.read_file(out)
    assert frame["class_after"].tolist() == ["Industrial", "AnnualCrop"]
    assert frame["confidence_before"].tolist() == [0.9, 0.9]
    with rasterio.open(pair.before) as src:
        before = src.read().astype(np.float32)
    for patch in seen["patches"]:  # the map's window starts at row 10, column 20 of the pair
        row, col = patch.row + 10, patch.col + 20
        np.testing.assert_array_equal(patch.before, before[:, row : row + 16, col : col + 16])
    shifted = write_change_map(tmp_path / "shifted.tif", offset=(10.5, 20))
    assert main(["regions", str(shifted), "--out", str(tmp_path / "s.gpkg"), *args]) == 2
