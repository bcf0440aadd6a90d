"""CPU runtimes for scene inference: torch, torch.compile, ONNX Runtime, OpenVINO, tile sizes.

Each runtime runs inside ``predict_scene`` itself (same tiles, blending and chunks: only the
forward pass differs), on a sample scene the model never saw, and is scored against the
sample world's true change: Mpx/s of the whole prediction (in memory, not written), change
F1 at 0.5, and the largest and mean difference from torch fp32's probability.

- ``torch_fp32``, ``torch_bf16``: ``predict_scene(precision=...)``.
- ``ort_fp32``, ``openvino_fp32``, ``openvino_bf16``: ``predict_scene(runtime=...)``, the
  model's ONNX export run by ONNX Runtime's CPU provider or compiled by OpenVINO for the
  CPU with that inference precision. When OpenVINO cannot be imported (it is an extra,
  ``cdtools[openvino]``), the benchmark installs it with pip into its own folder
  (``--openvino-dir``) and imports it from there.
- ``ort_int8``: the export (``ChangeDetector.export_onnx``) quantised statically (QDQ,
  per-channel int8 weights, uint8 activations) by onnxruntime.quantization, calibrated on
  the normalised tiles that predict_scene feeds the model on another sample scene (real
  tiles, not noise).
- ``compile_fp32``, ``compile_bf16``: the torch model through ``torch.compile`` (inductor,
  which needs a C++ compiler); compiling happens in the untimed first run.
- ``torch_bf16_tile768``, ``torch_bf16_tile1024``: larger tiles than predict_scene's
  default (448-640 px, an eighth of overlap), so a smaller share of pixels is predicted
  twice.

    python benchmarks/runtimes.py [--size 2048] [--model PATH] [--repeats 3] [--only a,b]

Writes benchmarks/results/runtimes.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import cdtools
from cdtools.scene.model import SceneModel

RESULTS = Path(__file__).parent / "results" / "runtimes.json"
SESSIONS: dict[str, Any] = {}
ONE_FORWARD = threading.Lock()  # dask's threads take turns; ORT uses every core
CALIBRATION_BATCHES = 8


@dataclasses.dataclass(frozen=True)
class OnnxFileSceneModel(SceneModel):
    """The sample model for predict_scene, its forward pass an ONNX file (the int8 one) run
    by ONNX Runtime's CPU provider: one session per process, one forward at a time."""

    onnx_path: str = ""

    def predict(self, before: np.ndarray, after: np.ndarray, **_: Any) -> np.ndarray:
        import onnxruntime as ort

        if self.token not in SESSIONS:
            providers = ["CPUExecutionProvider"]
            SESSIONS[self.token] = ort.InferenceSession(self.onnx_path, providers=providers)
        feed = {"before": before.astype(np.float32), "after": after.astype(np.float32)}
        with ONE_FORWARD:
            return SESSIONS[self.token].run(None, feed)[0][:, 0]


@dataclasses.dataclass(frozen=True)
class RecordingSceneModel(SceneModel):
    """The torch model, keeping the normalised batches it is given (for calibration)."""

    batches: list[tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=list)

    def predict(self, before: np.ndarray, after: np.ndarray, **kwargs: Any) -> np.ndarray:
        self.batches.append((before.copy(), after.copy()))
        return super().predict(before, after, **kwargs)


@dataclasses.dataclass(frozen=True)
class CompiledSceneModel(SceneModel):
    """The torch model through torch.compile (inductor)."""

    def _build(self, device: str) -> Any:
        import torch

        return torch.compile(super()._build(device))


def install_openvino(folder: Path) -> None:
    """Make ``import openvino`` work: pip-install it into ``folder`` (not this environment's
    site-packages) when it is not importable, and put ``folder`` on sys.path."""
    import subprocess
    import sys

    sys.path.insert(0, str(folder))
    try:
        import openvino  # noqa: F401
    except ImportError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
             str(folder), "openvino", "openvino-telemetry"],
            check=True,
        )  # fmt: skip
        importlib.invalidate_caches()  # the folder was listed before openvino was in it


def variant(base: SceneModel, cls: type, suffix: str, **fields: Any) -> Any:
    return cls(base.spec_json, base.weights, f"{base.token}-{suffix}", **fields)


def quantise(fp32: Path, out: Path, batches: list[tuple[np.ndarray, np.ndarray]]) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Tiles(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter({"before": b, "after": a} for b, a in batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    quantize_static(
        str(fp32), str(out), Tiles(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
    )  # fmt: skip
    return out


def run(handle: Any, pair: Any, precision: str, **options: Any) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    prob = cdtools.predict_scene(handle, pair, precision=precision, encoding="float32", **options)
    return prob.values, time.perf_counter() - start


def f1(prob: np.ndarray, truth: np.ndarray) -> float:
    predicted = prob >= 0.5
    hits = np.count_nonzero(predicted & truth)
    return round(float(2 * hits / max(np.count_nonzero(predicted) + np.count_nonzero(truth), 1)), 4)


def main() -> None:
    import rasterio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--model", type=Path, help="a saved sample detector (default: train it)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (median kept)")
    parser.add_argument("--only", default="", help="comma-separated runtimes (default: all)")
    parser.add_argument(
        "--openvino-dir", type=Path, default=Path(tempfile.gettempdir()) / "cdtools-openvino"
    )
    args = parser.parse_args()
    from cdtools.samples import RECIPE, sample_detector

    with tempfile.TemporaryDirectory(prefix="cdtools-runtimes-") as tmp:
        work = Path(tmp)
        detector = (
            cdtools.ChangeDetector.from_model(args.model) if args.model else sample_detector()
        )
        base = SceneModel.of(detector)
        test = cdtools.make_scene_pair(work / "test", size=args.size, seed=0)
        calibration = cdtools.make_scene_pair(work / "calibration", size=1024, seed=1)
        with rasterio.open(test.change_mask) as src:
            truth = src.read(1) == 1
        pair = cdtools.load_pair(test.before, test.after)
        recorder = variant(base, RecordingSceneModel, "recording")
        cdtools.predict_scene(
            recorder, cdtools.load_pair(calibration.before, calibration.after), precision="fp32"
        ).compute()
        fp32_path = detector.export_onnx(work / "model.onnx")
        int8_path = quantise(
            fp32_path, work / "model_int8.onnx", recorder.batches[:CALIBRATION_BATCHES]
        )
        runtimes: dict[str, tuple[Any, str, dict[str, Any]]] = {
            "torch_fp32": (base, "fp32", {}),
            "torch_bf16": (base, "bf16", {}),
            "ort_fp32": (base, "fp32", {"runtime": "onnxruntime"}),
            "ort_int8": (
                variant(base, OnnxFileSceneModel, "ort8", onnx_path=str(int8_path)),
                "fp32",
                {},
            ),
            "compile_fp32": (variant(base, CompiledSceneModel, "compiled"), "fp32", {}),
            "compile_bf16": (variant(base, CompiledSceneModel, "compiled"), "bf16", {}),
            "openvino_fp32": (base, "fp32", {"runtime": "openvino"}),
            "openvino_bf16": (base, "bf16", {"runtime": "openvino"}),
            "torch_bf16_tile768": (base, "bf16", {"tile": 768}),
            "torch_bf16_tile1024": (base, "bf16", {"tile": 1024}),
        }
        names = list(runtimes)
        if args.only:  # torch fp32 is the reference the others are compared with
            names = ["torch_fp32", *(n for n in args.only.split(",") if n != "torch_fp32")]
        if any(name.startswith("openvino") for name in names):
            install_openvino(args.openvino_dir)
        results: dict[str, Any] = {}
        reference = None
        for name in names:
            handle, precision, options = runtimes[name]
            run(handle, pair, precision, **options)  # warm: build, compile or load once
            timed = [run(handle, pair, precision, **options) for _ in range(args.repeats)]
            prob, seconds = timed[0][0], float(np.median([t for _, t in timed]))
            reference = prob if reference is None else reference
            valid = np.isfinite(prob) & np.isfinite(reference)
            diff = np.abs(prob[valid] - reference[valid])
            results[name] = {
                "seconds": round(seconds, 2),
                "seconds_each": [round(t, 2) for _, t in timed],
                "mpx_per_s": round(args.size**2 / 1e6 / seconds, 3),
                "change_f1": f1(np.nan_to_num(prob), truth),
                **options,
                "max_diff_from_torch_fp32": float(f"{diff.max():.3g}"),
                "mean_diff_from_torch_fp32": float(f"{diff.mean():.3g}"),
            }
            print(name, results[name], flush=True)
    out = {
        "benchmark": "runtimes",
        "protocol": f"predict_scene on sample world seed 0 at {args.size} px, in memory "
        "(float32 encoding), the forward pass swapped; after one untimed run, the median of "
        f"{args.repeats} timed runs; F1 of "
        "change at 0.5 against the sample truth; int8 calibrated on "
        f"{CALIBRATION_BATCHES} batches of normalised tiles from sample world seed 1",
        "model": f"sample detector: {RECIPE['arch']} {RECIPE['backbone']}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, no GPU",
        "runtimes": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
