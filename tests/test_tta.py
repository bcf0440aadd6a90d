"""Test-time augmentation: dihedral transforms, the mean over them, both engines, the CLI."""

from __future__ import annotations

import copy
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from cdtools.chips.stats import NormStats
from cdtools.cli import main
from cdtools.errors import ParameterError
from cdtools.io.pair import load_pair
from cdtools.learn.detector import ChangeDetector
from cdtools.learn.package import ModelSpec, write_package
from cdtools.learn.tta import DIHEDRAL, dihedral, dihedral_mean, undo_dihedral
from cdtools.models import ARCHITECTURES, SiameseUNet
from cdtools.scene.model import SceneModel
from cdtools.scene.predict import predict_scene
from tests.conftest import Pair, make_pair

TILING = {"tile": 64, "overlap": 16}
FP32 = {"precision": "fp32", **TILING}


class TinyNet(torch.nn.Module):
    """Change logits from one random 5 x 5 convolution of both dates: not equivariant.
    Built as the architecture registry builds models (see :func:`with_model`)."""

    output = "logit"

    def __init__(
        self, in_channels: int = 3, *, kernel: torch.Tensor | None = None, **_: object
    ) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(2 * in_channels, 1, 5, padding=2)
        torch.nn.init.normal_(self.conv.weight, generator=torch.Generator().manual_seed(1))
        if kernel is not None:
            with torch.no_grad():
                self.conv.weight.copy_(kernel.expand_as(self.conv.weight))

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.conv(torch.cat(pair, dim=1))


def symmetric_net() -> TinyNet:
    """A TinyNet whose kernel is the same under every flip and quarter turn: equivariant."""
    row = torch.tensor([0.1, -0.3, 0.5, -0.3, 0.1])
    kernel = torch.outer(row, row) + 0.2 * torch.eye(5) + 0.2 * torch.eye(5).flip(0)
    signs = torch.tensor([-1.0, -0.5, 1.0, 1.0, 0.5, -1.0])[:, None, None]  # per band
    return TinyNet(kernel=kernel[None] * signs[None])


class MaskNet(TinyNet):
    output = "mask"  # a thresholded map: nothing TTA may average


class NoOutputNet(torch.nn.Module):
    def __init__(self, in_channels: int = 3, **_: object) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(6, 1, 1)

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.conv(torch.cat(pair, dim=1))


def with_model(
    detector: ChangeDetector, model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> ChangeDetector:
    """A copy of ``detector`` that predicts with ``model``, whose class is registered as an
    architecture for the test (predict_scene builds the model from the spec's ``arch``)."""
    name = f"test_{type(model).__name__.lower()}"
    monkeypatch.setitem(ARCHITECTURES, name, type(model))
    swapped = copy.copy(detector)
    swapped.spec = replace(detector.spec, arch=name)
    swapped.model = model.eval()
    return swapped


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    """A 160 x 128 pair: random before, a bright rectangle in the after date."""
    folder = tmp_path_factory.mktemp("tta")
    return make_pair(folder / "scene", height=160, width=128, square=(30, 90, 20, 70), seed=3)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight siamese U-Net (resnet18) as a model package for 64-px chips."""
    torch.manual_seed(0)
    model = SiameseUNet(3, backbone="resnet18", pretrained=False)
    with torch.no_grad():  # random layers leave activations of ~0.004: logits of ~1
        model.head.weight.mul_(400)
    spec = ModelSpec(
        arch="siamese_unet",
        backbone="resnet18",
        in_channels=3,
        chip_size=64,
        stats=NormStats(mean=(110.0, 110.0, 110.0), std=(60.0, 60.0, 60.0)),
    )
    return write_package(tmp_path_factory.mktemp("tta") / "model", spec, model.state_dict())


@pytest.fixture(scope="module")
def detector(package: Path) -> ChangeDetector:
    return ChangeDetector.from_model(package)


@pytest.fixture(scope="module")
def scene_tta(package: Path, scene: Pair) -> np.ndarray:
    """predict_scene(tta=True) in fp32, one chunk per 64 pixels."""
    pair = load_pair(scene.before, scene.after)
    return predict_scene(package, pair, chunk=64, tta=True, **FP32).values


def test_dihedral_transforms_round_trip_exactly_and_are_eight() -> None:
    x = torch.randn(2, 3, 9, 9, generator=torch.Generator().manual_seed(0))
    seen = []
    for index in range(len(DIHEDRAL)):
        turned = dihedral(x, index)
        assert turned.shape == x.shape
        assert torch.equal(undo_dihedral(turned, index), x)
        assert torch.equal(undo_dihedral(dihedral(x[:, 0], index), index), x[:, 0])  # (b, h, w)
        seen.append(turned)
    assert torch.equal(seen[0], x)  # index 0 is the identity
    assert all(not torch.equal(a, b) for i, a in enumerate(seen) for b in seen[i + 1 :])
    with pytest.raises(ParameterError, match=r"square tiles .* 9 x 12 pixels"):
        dihedral_mean(lambda b, a: b[:, 0], torch.zeros(1, 3, 9, 12), torch.zeros(1, 3, 9, 12))


def _numpy_tta(model: torch.nn.Module, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The mean of the 8 transformed predictions, written out with numpy's own flips."""
    maps = []
    for mirrored in (False, True):
        for turns in range(4):
            pair = [
                np.rot90(np.flip(x, -1) if mirrored else x, turns, axes=(2, 3))
                for x in (before, after)
            ]
            with torch.inference_mode():
                logit = model(tuple(torch.from_numpy(x.copy()) for x in pair))
            prob = np.rot90(torch.sigmoid(logit)[:, 0].numpy(), -turns, axes=(1, 2))
            maps.append(np.flip(prob, -1) if mirrored else prob)
    return np.mean(maps, axis=0)


def test_tta_is_the_mean_of_the_eight_transformed_predictions(detector, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    before, after = rng.normal(size=(2, 2, 3, 48, 48)).astype(np.float32)
    tiny = with_model(detector, TinyNet(), monkeypatch)
    expected = _numpy_tta(tiny.model, before, after)
    handle = SceneModel.of(tiny)  # the model as predict_scene, and so predict, runs it
    options = {"device": "cpu", "precision": "fp32"}
    np.testing.assert_allclose(
        handle.predict(before, after, tta=True, **options), expected, atol=1e-6
    )
    alone = handle.predict(before, after, **options)
    assert np.abs(alone - expected).max() > 1e-2  # this model does care about orientation


def test_an_equivariant_model_is_unchanged_by_tta(detector, monkeypatch) -> None:
    symmetric = with_model(detector, symmetric_net(), monkeypatch)
    rng = np.random.default_rng(1)
    before, after = rng.integers(0, 255, (2, 3, 100, 90)).astype(np.uint8)
    alone = symmetric.predict(before, after, **FP32).values
    assert alone.std() > 0.05
    with_tta = symmetric.predict(before, after, tta=True, **FP32).values
    np.testing.assert_allclose(with_tta, alone, atol=1e-5)


def test_predict_and_predict_scene_agree_with_tta(detector, scene, scene_tta) -> None:
    pair = load_pair(scene.before, scene.after)
    whole = detector.predict(pair.values[0], pair.values[1], tta=True, **FP32).values
    plain = detector.predict(pair.values[0], pair.values[1], **FP32).values
    assert scene_tta.std() > 5  # a map with structure, so the comparison means something
    assert np.abs(scene_tta / 255 - whole).max() <= 1 / 255 + 1e-6
    assert np.abs(whole - plain).max() > 2 / 255  # TTA did something


def test_chunk_borders_leave_no_trace_with_tta(package, scene, scene_tta) -> None:
    pair = load_pair(scene.before, scene.after)
    for chunk in (96, 160):
        other = predict_scene(package, pair, chunk=chunk, tta=True, **FP32).values
        assert np.abs(other.astype(int) - scene_tta).max() <= 1  # within 1/255


@pytest.mark.parametrize("precision", ["auto", "bf16", "fp16"])
def test_tta_runs_in_every_precision(package, scene, scene_tta, precision) -> None:
    """Autocast, channels-last and folded BatchNorm on the turned tiles: close to fp32."""
    pair = load_pair(scene.before, scene.after)
    change = predict_scene(package, pair, chunk=96, tta=True, precision=precision, **TILING)
    diff = np.abs(change.values.astype(int) - scene_tta)
    assert change.values.max() < 255  # no nodata
    assert diff.mean() < 1 and diff.max() <= 8  # measured: mean 0.06, max 1 (x 1/255)


def test_a_model_without_a_logit_or_distance_output_is_refused(
    detector, scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = np.zeros((3, 64, 64), np.uint8)
    for model, found in ((MaskNet(), "output = 'mask'"), (NoOutputNet(), "no `output` attribute")):
        swapped = with_model(detector, model, monkeypatch)
        with pytest.raises(ParameterError, match=f"'logit', 'distance'.*{found}.*tta=False"):
            swapped.predict(image, image, tta=True)
        if isinstance(model, MaskNet):
            assert swapped.predict(image, image).shape == (64, 64)  # fine without TTA
    monkeypatch.setitem(ARCHITECTURES, "masknet", MaskNet)
    handle = types.SimpleNamespace(
        spec=replace(detector.spec, arch="masknet"), model=MaskNet()
    )  # what SceneModel.of reads from a detector
    pair = load_pair(scene.before, scene.after)
    with pytest.raises(ParameterError, match="MaskNet has output = 'mask'"):
        predict_scene(handle, pair, tta=True, **FP32)  # at once, not when computed


def test_the_cli_takes_tta(package, scene, scene_tta, tmp_path: Path) -> None:
    out = tmp_path / "change.tif"
    args = [str(scene.before), str(scene.after), "--model", str(package), "--out", str(out)]
    quick = ["--tile", "64", "--overlap", "16", "--chunk", "64", "--precision", "fp32"]
    assert main(["predict", *args, *quick, "--tta", "--no-progress"]) == 0
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), scene_tta)
