"""Tiles and their blend: the tile grid, the weights, and predict_scene's seamless result."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest
import torch

from cdtools.chips.stats import NormStats
from cdtools.errors import ParameterError
from cdtools.io.pair import array_pair
from cdtools.learn.package import ModelSpec
from cdtools.models import ARCHITECTURES
from cdtools.scene.predict import predict_scene
from cdtools.scene.tiling import blend_window, tile_starts


def test_tile_starts_cover_the_axis_and_end_flush() -> None:
    assert tile_starts(100, 32, 8) == [0, 24, 48, 68]
    assert tile_starts(20, 32, 8) == [0]
    assert tile_starts(64, 32, 0) == [0, 32]


def test_blend_window_discards_shared_edges_and_keeps_scene_borders() -> None:
    window = blend_window(32, 8)
    assert window[:2].max() == 0 and window[16, 16] == 1
    assert 0 < window[2, 16] < window[5, 16] < window[8, 16] == 1
    corner = blend_window(32, 8, inner=(False, True, False, True))  # top-left tile
    assert corner[0, 0] == 1 and corner[-1, -1] == 0


class LocalNet(torch.nn.Module):
    """A stand-in model with a small receptive field (2 pixels): one 5 x 5 convolution of
    both dates, built the way the architecture registry builds models."""

    output = "logit"

    def __init__(self, in_channels: int = 3, **_: Any) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(2 * in_channels, 1, 5, padding=2)
        torch.nn.init.normal_(self.conv.weight, generator=torch.Generator().manual_seed(2))

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.conv(torch.cat(pair, dim=1))


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A detector-like (spec, model) of LocalNet, normalisation the identity."""
    monkeypatch.setitem(ARCHITECTURES, "local_net", LocalNet)
    spec = ModelSpec(
        arch="local_net", backbone=None, in_channels=3, chip_size=64,
        stats=NormStats((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    )  # fmt: skip
    return types.SimpleNamespace(spec=spec, model=LocalNet().eval())


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(2, 3, 150, 130)).astype(np.float32)


def whole_image(model: torch.nn.Module, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The model on the whole image at once: what a seamless tiling must reproduce."""
    with torch.inference_mode():
        logit = model((torch.from_numpy(before[None]), torch.from_numpy(after[None])))
    return torch.sigmoid(logit)[0, 0].numpy()


@pytest.mark.parametrize(
    ("tile", "overlap", "chunk"), [(64, 16, None), (96, 32, None), (64, 24, 96), (32, 8, 64)]
)
def test_tiles_blend_without_seams_whatever_the_tiling(local, images, tile, overlap, chunk) -> None:
    before, after = images
    whole = whole_image(local.model, before, after)
    tiled = predict_scene(
        local, array_pair(before, after), tile=tile, overlap=overlap, chunk=chunk,
        precision="fp32", encoding="float32", batch_size=3,
    ).values  # fmt: skip
    assert tiled.shape == (150, 130) and tiled.dtype == np.float32
    assert whole.std() > 0.1  # a map with structure, so the comparison means something
    # The model reaches 2 pixels and the discarded margin is overlap / 4 >= 2 pixels, so no
    # value comes from a tile edge: tiled equals whole, whatever the tiling and chunking.
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_without_overlap_there_are_seams(local, images) -> None:
    before, after = images
    whole = whole_image(local.model, before, after)
    seams = predict_scene(
        local, array_pair(before, after), tile=64, overlap=0, precision="fp32", encoding="float32"
    ).values
    assert np.abs(seams - whole).max() > 0.1


def test_bad_tiling(local, images) -> None:
    pair = array_pair(*images)
    with pytest.raises(ParameterError, match="overlap"):
        predict_scene(local, pair, tile=32, overlap=20)
    with pytest.raises(ParameterError, match="encoding must be uint8 or float32"):
        predict_scene(local, pair, tile=32, encoding="float64")  # type: ignore[arg-type]
