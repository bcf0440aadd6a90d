"""Training and predicting at a coarser resolution: prepare_data(downsample=k)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cdtools.chips.coarsen import coarsen_image, coarsen_mask
from cdtools.chips.data import prepare_data
from cdtools.errors import ParameterError
from cdtools.io.pair import array_pair
from cdtools.learn.detector import ChangeDetector
from cdtools.learn.package import PackageError
from cdtools.models import to_probability
from cdtools.scene.model import SceneModel
from cdtools.scene.predict import predict_scene


def test_blocks_are_averaged_and_partial_blocks_dropped() -> None:
    image = np.arange(2 * 5 * 4, dtype=np.float32).reshape(2, 5, 4)
    coarse = coarsen_image(image, 2)
    assert coarse.shape == (2, 2, 2)  # the fifth row is no whole block
    assert coarse[1, 0, 1] == np.mean(image[1, 0:2, 2:4])
    assert coarsen_image(image, 1) is image


def test_a_coarse_label_is_change_where_half_its_labelled_pixels_are() -> None:
    blocks = {
        "half change": [[1, 1], [0, 0]],
        "one in four": [[1, 0], [0, 0]],
        "one labelled, change": [[1, 255], [255, 255]],
        "none labelled": [[255, 255], [255, 255]],
        "one of three labelled": [[1, 0], [0, 255]],
    }
    mask = np.concatenate([np.array(b, dtype=np.uint8) for b in blocks.values()], axis=1)
    assert coarsen_mask(mask, 2).tolist() == [[1, 0, 1, 255, 0]]


def test_prepare_data_coarsens_chips_and_masks(tiny_chips: Path) -> None:
    dls = prepare_data(tiny_chips, chip_size=32, batch_size=2, norm="dataset", downsample=2)
    (before, after), mask = dls.one_batch()
    assert before.shape[-2:] == after.shape[-2:] == mask.shape[-2:] == (32, 32)
    assert dls.downsample == 2
    # a validation chip (no augmentation) is the full-resolution chip, block-averaged
    ds = dls.valid_ds
    raw_before, _, raw_mask = ds.raw(0)
    (got_before, _), got_mask = ds[0]
    expected = coarsen_image(ds.stats.normalise(raw_before), 2)
    np.testing.assert_allclose(got_before.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert (got_mask.numpy() == coarsen_mask(raw_mask, 2)).all()


def test_bad_downsample_is_a_clear_error(tiny_chips: Path) -> None:
    with pytest.raises(ParameterError, match=r"downsample must be one of \(1, 2, 4\)"):
        prepare_data(tiny_chips, chip_size=32, downsample=3)


def test_a_coarse_model_predicts_on_the_input_grid_and_travels(
    tiny_chips: Path, tmp_path: Path
) -> None:
    dls = prepare_data(tiny_chips, chip_size=32, batch_size=4, norm="dataset", downsample=2)
    torch.manual_seed(0)
    detector = ChangeDetector(dls, arch="fc_siam_conc", pretrained=False)
    detector.fit(1, checkpoint=False, precision="fp32")
    assert detector.spec.downsample == 2
    # one batch of tiles: the model sees them block-averaged, its probability resized back
    rng = np.random.default_rng(0)
    before, after = (rng.normal(size=(2, 3, 64, 64)).astype(np.float32) for _ in range(2))
    prob = SceneModel.of(detector).predict(before, after, device="cpu", precision="fp32")
    model = detector.model.eval()
    with torch.inference_mode():
        coarse = [torch.from_numpy(coarsen_image(x, 2)) for x in (before, after)]
        small = to_probability(model, model(tuple(coarse)))
        expected = F.interpolate(small, size=(64, 64), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(prob, expected[:, 0].numpy(), atol=1e-4)
    # a whole pair of any size: the map is on the pair's grid
    x = rng.integers(0, 255, (3, 100, 90)).astype(np.uint8)
    y = x.copy()
    y[:, 20:60, 20:60] = 255
    change = detector.predict(x, y)
    assert change.shape == (100, 90) and np.isfinite(change.values).all()
    # an exported runtime gets the coarse tiles too
    pytest.importorskip("onnxruntime")
    pair = array_pair(x, y)
    options = {"tile": 64, "overlap": 16, "precision": "fp32", "encoding": "float32"}
    by_torch = predict_scene(detector, pair, **options).values
    by_onnx = predict_scene(detector, pair, runtime="onnxruntime", **options).values
    assert by_torch.std() > 1e-3 and np.abs(by_onnx - by_torch).max() < 1e-4
    # the package says so, and is marked for readers that know the field
    folder = detector.save(tmp_path / "model")
    spec = json.loads((folder / "model.json").read_text())
    assert spec["downsample"] == 2 and spec["format_version"] == 2
    loaded = ChangeDetector.from_model(folder)
    np.testing.assert_allclose(loaded.predict(x, y).values, change.values, atol=1e-5)
    # fine-tuning on data prepared at another resolution, and ONNX, are refused clearly
    native = prepare_data(tiny_chips, chip_size=32, batch_size=4, norm="dataset")
    with pytest.raises(ParameterError, match="downsample=2"):
        ChangeDetector.from_model(folder, data=native)
    with pytest.raises(ParameterError, match="ONNX"):
        detector.export_onnx(tmp_path / "model.onnx")
    # a damaged value is named
    (folder / "model.json").write_text(json.dumps({**spec, "downsample": 3}))
    with pytest.raises(PackageError, match="downsample=3"):
        ChangeDetector.from_model(folder)
