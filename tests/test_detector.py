from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from cdtools.chips.data import prepare_data
from cdtools.chips.export import export_training_data
from cdtools.errors import GridError, OutputExistsError, ParameterError
from cdtools.learn.detector import ChangeDetector
from cdtools.learn.metrics import best_f1_threshold, supported_f1_threshold
from cdtools.learn.package import PackageError
from cdtools.models import ARCHITECTURES
from cdtools.scene.predict import NODATA, encode_probability
from tests.conftest import Pair


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[ChangeDetector, Pair]:
    from tests.conftest import make_pair

    folder = tmp_path_factory.mktemp("detector")
    pair = make_pair(folder / "scene", height=192, width=192, square=(30, 70, 40, 90))
    chips = export_training_data(
        pair.before,
        pair.after,
        pair.polygons,
        folder / "chips",
        chip_size=64,
        stride=32,
        progress=False,
    )
    # The dataset's statistics: this pair's change is absolute brightness (a square at 255),
    # which per-scene standardisation of each date partly evens out.
    dls = prepare_data(
        chips, chip_size=64, batch_size=4, val_split_pct=0.25, seed=0, norm="dataset"
    )
    torch.manual_seed(0)
    detector = ChangeDetector(dls, arch="siamese_unet", backbone="resnet18", pretrained=False)
    detector.fit(6, lr=1e-2, checkpoint=True, monitor="f1")
    return detector, pair


def test_fit_records_losses_and_change_scores(trained: tuple[ChangeDetector, Pair]) -> None:
    detector, _ = trained
    names = detector.learn.recorder.metric_names
    assert list(names[1:-1]) == ["train_loss", "valid_loss", "precision", "recall", "f1", "iou"]
    assert len(detector.learn.recorder.values) == 6
    assert (detector.learn.path / "models" / "checkpoint.safetensors").exists()
    assert not list(detector.learn.path.rglob("*.pth"))  # no pickled checkpoints


def test_precision_recall_score_table(trained: tuple[ChangeDetector, Pair]) -> None:
    detector, _ = trained
    table = detector.precision_recall_score()
    assert list(table.columns) == ["NoChange", "Change"]
    assert list(table.index) == ["precision", "recall", "f1", "iou", "support"]
    labelled = sum(int((m != 255).sum()) for _, m in detector.data.valid_ds)
    assert table.loc["support"].sum() == labelled
    assert table.loc["f1", "Change"] > 0.3  # the bright square is easy to learn


def test_tune_threshold_keeps_the_supported_threshold(
    trained: tuple[ChangeDetector, Pair],
) -> None:
    detector, _ = trained
    counts = detector.validation_histograms()
    labelled = sum(int((m != 255).sum()) for _, m in detector.data.valid_ds)
    assert counts.shape == (len(detector.data.valid_ds), 2, 200) and counts.sum() == labelled
    tuned = detector.tune_threshold()
    assert tuned == detector.threshold == supported_f1_threshold(counts)
    # its validation F1 is the best one's, less at most what the chips cannot tell apart
    f1 = detector.precision_recall_score().loc["f1", "Change"]
    detector.spec.threshold = best_f1_threshold(counts.sum(axis=0))
    best = detector.precision_recall_score().loc["f1", "Change"]
    assert best - 0.2 < f1 <= best + 1e-3
    detector.spec.threshold = tuned  # the shared detector as it was, its scores too
    detector.precision_recall_score()


def test_show_results_draws_four_columns(trained: tuple[ChangeDetector, Pair]) -> None:
    fig = trained[0].show_results(rows=2)
    assert [ax.get_title() for ax in fig.axes[:4]] == ["before", "after", "truth", "prediction"]


def test_save_and_from_model_round_trip(
    trained: tuple[ChangeDetector, Pair], tmp_path: Path
) -> None:
    detector, _ = trained
    folder = detector.save(tmp_path / "model", zip=True)
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.safetensors"]
    spec = json.loads((folder / "model.json").read_text())
    assert spec["arch"] == "siamese_unet" and spec["backbone"] == "resnet18"
    assert spec["threshold"] == detector.threshold and len(spec["stats"]["mean"]) == 3
    # the package keeps the validation scores (how well a 2-epoch net scores depends on
    # the thread count, so the figures are compared, not bounded)
    table = detector.precision_recall_score()
    assert spec["metrics"]["Change"]["f1"] == pytest.approx(table.loc["f1", "Change"])
    assert spec["metrics"]["Change"]["support"] == table.loc["support", "Change"] > 0
    assert spec["training"]["train_chips"] > 0
    x = np.random.default_rng(0).integers(0, 255, (3, 96, 80)).astype(np.uint8)
    y = x.copy()
    y[:, 20:50, 20:50] = 255
    expected = detector.predict(x, y).values
    for source in (folder, folder / "model.json", tmp_path / "model.zip"):
        loaded = ChangeDetector.from_model(source)
        assert loaded.learn is None and loaded.threshold == detector.threshold
        np.testing.assert_allclose(loaded.predict(x, y).values, expected, atol=1e-5)
    with pytest.raises(OutputExistsError):
        detector.save(tmp_path / "model")


def test_packages_with_pickles_or_escaping_members_are_refused(
    trained: tuple[ChangeDetector, Pair], tmp_path: Path
) -> None:
    folder = trained[0].save(tmp_path / "model")
    (folder / "extra.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(PackageError, match=r"extra\.pkl, a pickle"):
        ChangeDetector.from_model(folder)
    (folder / "extra.pkl").unlink()
    (folder / "notes.txt").write_bytes(pickle.dumps([1, 2]))  # pickled, whatever its name
    with pytest.raises(PackageError, match="a pickle"):
        ChangeDetector.from_model(folder)
    (folder / "notes.txt").unlink()
    torch.save({"w": torch.zeros(1)}, tmp_path / "weights.bin")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.write(folder / "model.json", "model/model.json")
        archive.write(folder / "model.safetensors", "model/model.safetensors")
        archive.writestr("../../outside.txt", "escape")
    with pytest.raises(PackageError, match="outside the package"):
        ChangeDetector.from_model(evil)
    assert not (tmp_path.parent / "outside.txt").exists()


def test_predict_writes_a_georeferenced_change_map(
    trained: tuple[ChangeDetector, Pair], tmp_path: Path
) -> None:
    detector, pair = trained
    out = tmp_path / "change.tif"
    change = detector.predict(pair.before, pair.after, out_path=out, tile=64, overlap=16)
    assert change.rio.crs.to_epsg() == 32614
    assert change.rio.transform() == pair.transform
    assert change.shape == (192, 192) and 0 <= float(change.min()) <= float(change.max()) <= 1
    assert change.dtype == np.float32
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32614 and src.transform == pair.transform
        assert src.dtypes[0] == "uint8" and src.nodata == NODATA
        written = src.read(1)
    assert written.max() < NODATA  # both dates have data everywhere
    np.testing.assert_array_equal(written, encode_probability(change.values))
    scaled = change.values * 255
    assert np.abs(scaled - np.round(scaled)).max() > 0.1  # in memory: not quantised
    inside = float(change.values[30:70, 40:90].mean())
    outside = float(change.values[120:, :30].mean())
    assert inside > outside  # the changed square stands out
    middle = float(np.median(change.values))  # a threshold with change on either side
    options = {"tile": 64, "overlap": 16, "output": "mask", "threshold": middle}
    mask = detector.predict(pair.before, pair.after, out_path=tmp_path / "m.tif", **options)
    with rasterio.open(tmp_path / "m.tif") as src:
        assert src.nodata == NODATA
        written = src.read(1)
    np.testing.assert_array_equal(
        written, (encode_probability(mask.values) / 255 > middle).astype(np.uint8)
    )
    assert 0 < written.mean() < 1  # some change, not all
    with pytest.raises(OutputExistsError):
        detector.predict(pair.before, pair.after, out_path=out)


def test_predict_refuses_wrong_bands_and_shapes(trained: tuple[ChangeDetector, Pair]) -> None:
    detector, _ = trained
    with pytest.raises(GridError, match="4 bands but the model takes 3; pass imagery with"):
        detector.predict(np.zeros((4, 64, 64), np.uint8), np.zeros((4, 64, 64), np.uint8))
    with pytest.raises(GridError, match=r"\(3, 64, 64\) .* \(3, 64, 32\) .* differ in shape"):
        detector.predict(np.zeros((3, 64, 64), np.uint8), np.zeros((3, 64, 32), np.uint8))
    with pytest.raises(ParameterError, match="both dates as arrays, or both as raster files"):
        detector.predict(np.zeros((3, 64, 64), np.uint8), "after.tif")


def test_predict_keeps_the_model_bands_of_wider_imagery(
    trained: tuple[ChangeDetector, Pair],
) -> None:
    detector, _ = trained
    rng = np.random.default_rng(5)
    before, after = rng.integers(0, 255, (2, 5, 64, 64)).astype(np.uint8)
    spec = detector.spec
    detector.spec = replace(spec, bands=(3, 1, 4))
    try:
        wide = detector.predict(before, after, tile=64, precision="fp32").values
    finally:
        detector.spec = spec
    picked = detector.predict(before[[3, 1, 4]], after[[3, 1, 4]], tile=64, precision="fp32")
    np.testing.assert_array_equal(wide, picked.values)
    first = detector.predict(before[:3], after[:3], tile=64, precision="fp32").values
    assert np.abs(first - wide).max() > 1e-3  # other bands, another map


def test_export_onnx_matches_pytorch(trained: tuple[ChangeDetector, Pair], tmp_path: Path) -> None:
    import onnxruntime

    detector, _ = trained
    path = detector.export_onnx(tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(path))
    before, after = torch.randn(2, 3, 96, 64), torch.randn(2, 3, 96, 64)
    (got,) = session.run(None, {"before": before.numpy(), "after": after.numpy()})
    detector.model.eval()
    with torch.no_grad():
        expected = detector.probability(detector.model((before, after))).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_bad_options(trained: tuple[ChangeDetector, Pair]) -> None:
    detector, _ = trained
    with pytest.raises(ParameterError, match="arch must be one of"):
        ChangeDetector(detector.data, arch="unet3000")
    with pytest.raises(ParameterError, match="does not take these options"):
        ChangeDetector(detector.data, pretrained=False, attention_type="PAM")
    with pytest.raises(ParameterError, match="monitor"):
        detector.fit(1, lr=1e-3, monitor="accuracy")


class TinyNet(torch.nn.Module):
    """A stand-in with a 5-pixel receptive field, to check tiling exactly; built the way
    the architecture registry builds models."""

    output = "logit"

    def __init__(self, in_channels: int = 3, **_: object) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(2 * in_channels, 1, 5, padding=2)
        torch.nn.init.normal_(self.conv.weight)

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.conv(torch.cat(pair, dim=1))


def test_tiled_predict_equals_whole_image_predict(
    trained: tuple[ChangeDetector, Pair], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ARCHITECTURES, "tiny_net", TinyNet)
    detector = ChangeDetector.from_model(
        trained[0].save(trained[0].data.path / "tiny", overwrite=True)
    )
    detector.spec = replace(detector.spec, arch="tiny_net")
    detector.model = TinyNet().eval()
    rng = np.random.default_rng(0)
    before = rng.integers(0, 255, (3, 150, 131)).astype(np.uint8)
    after = rng.integers(0, 255, (3, 150, 131)).astype(np.uint8)
    stats = detector.spec.stats
    before_n, after_n = (torch.from_numpy(stats.normalise(x)[None]) for x in (before, after))
    with torch.inference_mode():
        whole = torch.sigmoid(detector.model((before_n, after_n)))[0, 0].numpy()
    assert whole.std() > 0.1  # a map with structure, so the comparison means something
    for tile, overlap in ((64, 16), (32, 12), (96, 32)):
        tiled = detector.predict(before, after, tile=tile, overlap=overlap, precision="fp32")
        np.testing.assert_allclose(tiled.values, whole, atol=1e-4)


def test_predict_odd_sizes_small_images_and_nodata(
    trained: tuple[ChangeDetector, Pair], tmp_path: Path
) -> None:
    from rasterio.transform import from_origin

    from cdtools.io.raster import write_geotiff

    detector, _ = trained
    transform = from_origin(500123.25, 4100456.75, 0.6, 0.6)
    rng = np.random.default_rng(3)
    images = {}
    for name in ("before", "after"):
        data = rng.integers(0, 250, (3, 101, 77)).astype(np.uint8)
        data[:, :5, :7] = 255  # nodata corner
        images[name] = tmp_path / f"{name}.tif"
        write_geotiff(images[name], data, transform=transform, crs="EPSG:26915", nodata=255)
    out = tmp_path / "change.tif"
    change = detector.predict(images["before"], images["after"], out_path=out, tile=64)
    assert change.shape == (101, 77) and change.rio.crs.to_epsg() == 26915
    assert np.isnan(change.values[:5, :7]).all() and np.isfinite(change.values[5:, 7:]).all()
    with rasterio.open(out) as src:
        assert src.transform == transform and src.crs.to_epsg() == 26915
        assert src.shape == (101, 77) and src.dtypes[0] == "uint8" and src.nodata == NODATA
        written = src.read(1)
    assert (written[:5, :7] == NODATA).all() and (written[5:, 7:] < NODATA).all()
    small = rng.integers(0, 255, (3, 40, 30)).astype(np.float32)
    small[0, 3, 4] = np.nan
    tiny = detector.predict(small, small, tile=64)
    assert tiny.shape == (40, 30) and np.isnan(tiny.values[3, 4])
    assert np.isfinite(tiny.values).sum() == 40 * 30 - 1


def test_fit_without_labels_is_refused(pair: Pair, tmp_path: Path) -> None:
    from cdtools.errors import LabelError
    from cdtools.io.raster import write_geotiff

    nothing = tmp_path / "nothing.tif"
    write_geotiff(
        nothing, np.zeros((300, 200), np.uint8), transform=pair.transform, crs="EPSG:32614"
    )
    chips = export_training_data(
        pair.before, pair.after, nothing, tmp_path / "c", chip_size=64, stride=64, progress=False
    )
    detector = ChangeDetector(prepare_data(chips, chip_size=64), pretrained=False)
    with pytest.raises(LabelError, match="hold no change"):
        detector.fit(1, lr=1e-3)


def test_broken_and_future_packages_are_refused(
    trained: tuple[ChangeDetector, Pair], tmp_path: Path
) -> None:
    folder = trained[0].save(tmp_path / "model")
    spec = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**spec, "format_version": 99}))
    with pytest.raises(PackageError, match="newer than this cdtools reads"):
        ChangeDetector.from_model(folder)
    (folder / "model.json").write_text(json.dumps({**spec, "arch": "unet3000"}))
    with pytest.raises(PackageError, match="holds a 'unet3000' model"):
        ChangeDetector.from_model(folder)
    (folder / "model.json").write_text(json.dumps({**spec, "in_channels": 4}))
    with pytest.raises(PackageError, match="weights do not fit"):
        ChangeDetector.from_model(folder)
    (folder / "model.json").unlink()
    with pytest.raises(PackageError, match=r"needs model\.json and model\.safetensors"):
        ChangeDetector.from_model(folder)
    with pytest.raises(ParameterError, match=r"unknown backbone 'resnet19'.*resnet18"):
        ChangeDetector(trained[0].data, arch="siamese_unet", backbone="resnet19")
    with pytest.raises(ParameterError, match="takes no backbone"):
        ChangeDetector(trained[0].data, backbone="resnet18")  # the FC networks have their own


def test_predict_is_nan_where_either_date_has_no_data(
    trained: tuple[ChangeDetector, Pair],
) -> None:
    detector, _ = trained
    rng = np.random.default_rng(4)
    before, after = rng.integers(0, 255, (2, 3, 96, 80)).astype(np.float32)
    before[:, 10:20, 5:15] = np.nan  # no data in the before date only
    after[1, 60:70, 50:75] = np.nan  # in one band of the after date only
    change = detector.predict(before, after, tile=64, precision="fp32").values
    missing = np.zeros((96, 80), bool)
    missing[10:20, 5:15] = missing[60:70, 50:75] = True
    np.testing.assert_array_equal(np.isnan(change), missing)


def test_predict_takes_arrays_and_files_alike(
    trained: tuple[ChangeDetector, Pair], tmp_path: Path
) -> None:
    from rasterio.transform import from_origin

    from cdtools.io.raster import write_geotiff

    detector, _ = trained
    north_up = {"transform": from_origin(620000.0, 3350000.0, 0.5, 0.5), "crs": "EPSG:32614"}
    rng = np.random.default_rng(6)
    before = rng.integers(0, 250, (3, 96, 80)).astype(np.uint8)
    after = before.copy()
    after[:, 30:60, 20:50] = 255
    files = [write_geotiff(tmp_path / f"{n}.tif", x, **north_up) for n, x in
             (("before", before), ("after", after))]  # fmt: skip
    options = {"tile": 64, "overlap": 16, "precision": "fp32"}
    from_arrays = detector.predict(before, after, **options)
    from_files = detector.predict(*files, **options)
    np.testing.assert_array_equal(from_arrays.values, from_files.values)
    assert from_arrays.rio.crs is None and from_files.rio.crs.to_epsg() == 32614
    np.testing.assert_array_equal(from_arrays.x.values, np.arange(80) + 0.5)  # pixel centres
    channels_last = detector.predict(before.transpose(1, 2, 0), after.transpose(1, 2, 0), **options)
    np.testing.assert_array_equal(channels_last.values, from_arrays.values)
