"""predict_scene's runtimes: ONNX Runtime and OpenVINO give torch's map; bad options."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from cdtools.errors import ParameterError
from cdtools.io.pair import load_pair
from cdtools.samples import sample_detector
from cdtools.scene.predict import predict_scene
from cdtools.scene.runtime import MissingRuntimeError
from cdtools.synthetic import make_scene_pair

OPTIONS = {"tile": 128, "overlap": 32, "chunk": 256}


@pytest.fixture(scope="module")
def detector():
    return sample_detector()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):
    world = make_scene_pair(tmp_path_factory.mktemp("runtime") / "world", size=384, seed=22)
    return load_pair(world.before, world.after)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_an_exported_runtime_gives_torchs_fp32_map(detector, pair, runtime) -> None:
    pytest.importorskip(runtime)
    torch_map = predict_scene(detector, pair, precision="fp32", **OPTIONS).values.astype(int)
    other = predict_scene(detector, pair, precision="fp32", runtime=runtime, **OPTIONS).values
    assert torch_map.std() > 5  # a map with structure, so the comparison means something
    assert np.abs(other.astype(int) - torch_map).max() <= 1  # within 1/255


def test_openvino_in_bf16_stays_near_fp32(detector, pair) -> None:
    pytest.importorskip("openvino")
    fp32 = predict_scene(detector, pair, precision="fp32", **OPTIONS).values.astype(int)
    bf16 = predict_scene(detector, pair, precision="bf16", runtime="openvino", **OPTIONS).values
    # here 2/255 at most, 0.014/255 on average (torch bf16: 2 and 0.015); on the 2048
    # sample scene 19/255 at most
    assert np.abs(bf16.astype(int) - fp32).max() <= 13
    assert np.abs(bf16.astype(int) - fp32).mean() <= 0.1


def test_a_runtime_that_is_not_installed_names_the_extra(
    detector, pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else found(name)
    )
    with pytest.raises(MissingRuntimeError, match=r"pip install 'cdtools\[openvino\]'"):
        predict_scene(detector, pair, runtime="openvino")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"runtime": "tensorrt"}, "runtime must be torch, onnxruntime or openvino"),
        ({"runtime": "onnxruntime", "tta": True}, "tta=True needs runtime='torch'"),
        ({"runtime": "onnxruntime", "precision": "bf16"}, "takes precision auto, fp32 on"),
        ({"runtime": "onnxruntime", "device": "cuda"}, "runs on the CPU here"),
    ],
)
def test_options_a_runtime_cannot_honour_are_refused(detector, pair, options, message) -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(ParameterError, match=message):
        predict_scene(detector, pair, **options)
