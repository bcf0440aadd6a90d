"""norm="scene" (the default): each date of each scene normalised with its own statistics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from cdtools.chips.data import prepare_data
from cdtools.chips.export import export_training_data
from cdtools.chips.stats import NormStats
from cdtools.errors import ParameterError
from cdtools.io.pair import load_pair
from cdtools.io.raster import write_geotiff
from cdtools.learn.detector import ChangeDetector
from cdtools.scene.predict import predict_scene
from tests.conftest import Pair, make_pair

TILING = {"tile": 64, "overlap": 16}
FP32 = {"precision": "fp32", **TILING}


def relit(path: Path, out: Path, gain: tuple[float, ...], offset: float) -> Path:
    """A float32 copy of a raster with a per-band gain and an offset: new light, no change."""
    with rasterio.open(path) as src:
        image, transform, crs = src.read().astype(np.float32), src.transform, src.crs
    write_geotiff(out, image * np.asarray(gain, np.float32)[:, None, None] + offset,
                  transform=transform, crs=crs)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pair, Path, Path]:
    """A pair, and the same pair with its after date relit (gain per band, offset)."""
    folder = tmp_path_factory.mktemp("scene_norm")
    pair = make_pair(folder / "scene", height=128, width=128, square=(30, 70, 40, 90))
    after = relit(pair.after, folder / "after_relit.tif", (1.5, 0.8, 2.0), 40.0)
    before = relit(pair.before, folder / "before_relit.tif", (0.5, 1.2, 0.9), -10.0)
    return pair, before, after


@pytest.fixture(scope="module")
def detector(scenes, tmp_path_factory) -> ChangeDetector:
    pair, _, after = scenes
    chips = export_training_data(
        pair.before, after, pair.polygons, tmp_path_factory.mktemp("chips") / "chips",
        chip_size=64, stride=32, progress=False,
    )  # fmt: skip
    dls = prepare_data(chips, chip_size=64, batch_size=4, val_split_pct=0.25, seed=0)
    torch.manual_seed(0)
    detector = ChangeDetector(dls, arch="fc_siam_diff", pretrained=False)
    with detector.learn.no_bar(), detector.learn.no_logging():
        detector.fit(4, lr=1e-2, checkpoint=False, precision="fp32")
    return detector


def test_each_date_of_a_chips_folder_is_standardised_on_its_own(detector) -> None:
    data = detector.data
    assert data.stats.per_scene and data.stats.source == "scene"
    befores, afters = zip(*(pair for pair, _ in data.train_ds), strict=True)
    for date in (torch.stack(befores), torch.stack(afters)):
        per_band = date.transpose(0, 1).reshape(3, -1)
        # Augmentation jitters brightness and contrast; the scene's own mean and spread
        # (not the other date's, which the relighting moved by 40 and a gain of 2) remain.
        assert per_band.mean(dim=1).abs().max() < 0.35
        assert ((per_band.std(dim=1) - 1).abs() < 0.35).all()


def test_new_light_changes_nothing_in_prediction(detector, scenes) -> None:
    pair, before_relit, after_relit = scenes
    as_taken = detector.predict(pair.before, pair.after, **FP32).values
    relit_both = detector.predict(before_relit, after_relit, **FP32).values
    assert as_taken.std() > 0.01  # a map with structure, so the comparison means something
    np.testing.assert_allclose(relit_both, as_taken, atol=2e-3)


def test_dataset_statistics_do_see_the_new_light(scenes, detector) -> None:
    pair, before_relit, after_relit = scenes
    spec = detector.spec
    detector.spec = replace(spec, stats=NormStats(spec.stats.mean, spec.stats.std))
    try:
        as_taken = detector.predict(pair.before, pair.after, **FP32).values
        relit_both = detector.predict(before_relit, after_relit, **FP32).values
    finally:
        detector.spec = spec
    assert np.abs(relit_both - as_taken).max() > 0.05


def test_predict_scene_uses_each_dates_statistics_too(detector, scenes, tmp_path) -> None:
    pair, before_relit, after_relit = scenes
    package = detector.save(tmp_path / "model")
    assert ChangeDetector.from_model(package).spec.stats.per_scene
    whole = detector.predict(pair.before, pair.after, **FP32).values
    for before, after in ((pair.before, pair.after), (before_relit, after_relit)):
        lazy = predict_scene(package, load_pair(before, after), chunk=64, **FP32).values
        assert np.abs(lazy / 255 - whole).max() <= 1 / 255 + 2e-3


def test_large_scenes_are_sampled_and_nodata_is_left_out() -> None:
    stats = NormStats((0.0,), (1.0,), "scene")
    image = np.random.default_rng(0).normal(8.0, 1.0, (1, 2000, 1500)).astype(np.float32)
    image[0, :100] = np.nan  # no data
    image[0, :, :10] = 1e6  # marked invalid below
    valid = np.ones(image.shape[1:], bool)
    valid[:, :10] = False
    own = stats.for_image(image, valid)
    assert own.source == "scene" and own.mean[0] == pytest.approx(8.0, abs=0.05)
    assert own.std[0] == pytest.approx(1.0, abs=0.05)
    assert NormStats((0.0,), (1.0,)).for_image(image) == NormStats((0.0,), (1.0,))


def test_an_unknown_norm_is_refused(detector) -> None:
    with pytest.raises(ParameterError, match="'dataset', 'scene'"):
        prepare_data(detector.data.sources[0], norm="per-image")  # type: ignore[arg-type]


def test_a_model_and_data_normalised_differently_are_refused(detector, tmp_path) -> None:
    package = detector.save(tmp_path / "model")
    other = prepare_data(detector.data.sources[0], chip_size=64, norm="dataset")
    with pytest.raises(ParameterError, match="norm='scene'"):
        ChangeDetector.from_model(package, data=other)
    assert ChangeDetector.from_model(package, data=detector.data).data is detector.data
