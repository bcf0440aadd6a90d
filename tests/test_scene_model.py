"""SceneModel: the model package as scene inference ships it and builds it on each worker."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cdtools.io.pair import load_pair
from cdtools.learn.package import PackageError
from cdtools.models import ARCHITECTURES
from cdtools.samples import sample_detector
from cdtools.scene.model import SceneModel, _fold_batch_norms, _with_weights
from cdtools.scene.predict import predict_scene
from cdtools.synthetic import make_scene_pair


@pytest.fixture(scope="module")
def detector():
    return sample_detector()


def _outputs(model: nn.Module, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    pair = tuple(torch.randn(1, 3, 64, 64, generator=generator) for _ in range(2))
    with torch.inference_mode():
        return model.eval()(pair)


def test_a_package_path_ships_its_weights_file_as_it_is(detector, tmp_path: Path) -> None:
    folder = detector.save(tmp_path / "model")
    handle = SceneModel.of(folder)
    assert handle.weights == (folder / "model.safetensors").read_bytes()
    built, _, _ = handle.module("cpu", "fp32")
    assert torch.allclose(_outputs(built), _outputs(detector.model), atol=1e-4)


def test_a_truncated_weights_file_is_refused_before_any_chunk_runs(
    detector, tmp_path: Path
) -> None:
    folder = detector.save(tmp_path / "model")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    world = make_scene_pair(tmp_path / "world", size=256, seed=3)
    with pytest.raises(PackageError, match=r"model\.safetensors is not a safetensors file"):
        predict_scene(folder, load_pair(world.before, world.after))


def test_built_on_meta_it_predicts_as_built_the_ordinary_way(detector) -> None:
    handle = SceneModel.of(detector)
    built = _with_weights(detector.spec, handle.weights)
    assert not any(t.is_meta for t in built.state_dict().values())
    assert torch.equal(_outputs(built), _outputs(detector.model))


class _KeepsATensor(nn.Module):
    """An architecture with a tensor outside its state dict, which meta would leave empty."""

    def __init__(self, in_channels: int, **_: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 1, 1)
        self.offset = torch.full((1,), 0.25)

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.conv(pair[1] - pair[0]) + self.offset


def test_an_architecture_with_tensors_outside_its_state_is_built_the_ordinary_way(
    detector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ARCHITECTURES, "keeps_a_tensor", _KeepsATensor)
    spec = dataclasses.replace(detector.spec, arch="keeps_a_tensor", backbone=None, arch_kwargs={})
    trained = _KeepsATensor(3)
    weights = SceneModel.of(_Detector(spec, trained)).weights
    built = _with_weights(spec, weights)
    assert built.offset.device.type == "cpu"
    assert torch.equal(_outputs(built), _outputs(trained))


@dataclasses.dataclass
class _Detector:
    spec: object
    model: nn.Module


def test_batch_norms_fold_into_the_convolutions_before_them(detector) -> None:
    model = _with_weights(detector.spec, SceneModel.of(detector).weights).eval()
    folded = _fold_batch_norms(model, 3)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert torch.allclose(_outputs(folded), _outputs(detector.model), atol=1e-3)


class _NormBeforeConv(nn.Module):
    """A BatchNorm registered after a convolution but applied before it: no folding."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1)
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        generator = torch.Generator().manual_seed(1)
        self.norm.running_mean = torch.randn(4, generator=generator)
        self.norm.running_var = torch.rand(4, generator=generator) + 0.1

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.conv(self.norm(self.stem(pair[1] - pair[0])))


def test_a_folding_that_changes_the_output_is_undone() -> None:
    model = _NormBeforeConv().eval()
    expected = _outputs(model)
    kept = _fold_batch_norms(model, 3)
    assert isinstance(kept.norm, nn.BatchNorm2d) and isinstance(kept.conv, nn.Conv2d)
    assert torch.equal(_outputs(kept), expected)
    assert np.isfinite(expected.numpy()).all()


@pytest.mark.parametrize(
    "weights",
    [b"", b"\x10\x00\x00\x00\x00\x00\x00\x00[1, 2, 3]       ", b"\xff" * 64],
    ids=["empty", "a header that is not a table", "no header"],
)
def test_weights_that_are_not_safetensors_are_refused(
    detector, tmp_path: Path, weights: bytes
) -> None:
    folder = detector.save(tmp_path / "model")
    (folder / "model.safetensors").write_bytes(weights)
    with pytest.raises(PackageError, match=r"model\.safetensors is not a safetensors file"):
        SceneModel.of(folder)
