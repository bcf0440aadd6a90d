"""CPU runtimes for scene inference: torch fp32 and bf16 beside ONNX Runtime fp32 and int8.

Each runtime runs inside ``predict_scene`` itself (same tiles, blending and chunks: only the
forward pass differs), on a sample scene the model never saw, and is scored against the
sample world's true change: Mpx/s of the whole prediction (in memory, not written), change
F1 at 0.5, and the largest and mean difference from torch fp32's probability.

- ``torch_fp32``, ``torch_bf16``: ``predict_scene(precision=...)``.
- ``ort_fp32``: the model exported with ``ChangeDetector.export_onnx`` (dynamic batch and
  size), run by ONNX Runtime's CPU provider.
- ``ort_int8``: that export quantised statically (QDQ, per-channel int8 weights, uint8
  activations) by onnxruntime.quantization, calibrated on the normalised tiles that
  predict_scene feeds the model on another sample scene (real tiles, not noise).

torch.compile, OpenVINO and larger tiles are not in this run.

    python benchmarks/runtimes.py [--size 2048] [--model PATH]

Writes benchmarks/results/runtimes.json.
"""

from __future__ import annotations

import argparse
import dataclasses
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
class OnnxSceneModel(SceneModel):
    """The sample model for predict_scene, its forward pass run by ONNX Runtime."""

    onnx_path: str = ""

    def predict(self, before: np.ndarray, after: np.ndarray, **_: Any) -> np.ndarray:
        import onnxruntime as ort

        if self.onnx_path not in SESSIONS:
            SESSIONS[self.onnx_path] = ort.InferenceSession(
                self.onnx_path, providers=["CPUExecutionProvider"]
            )
        feed = {"before": before.astype(np.float32), "after": after.astype(np.float32)}
        with ONE_FORWARD:
            return SESSIONS[self.onnx_path].run(None, feed)[0][:, 0]


@dataclasses.dataclass(frozen=True)
class RecordingSceneModel(SceneModel):
    """The torch model, keeping the normalised batches it is given (for calibration)."""

    batches: list[tuple[np.ndarray, np.ndarray]] = dataclasses.field(default_factory=list)

    def predict(self, before: np.ndarray, after: np.ndarray, **kwargs: Any) -> np.ndarray:
        self.batches.append((before.copy(), after.copy()))
        return super().predict(before, after, **kwargs)


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


def run(handle: Any, pair: Any, precision: str) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    coded = cdtools.predict_scene(handle, pair, precision=precision, encoding="float32").values
    return coded, time.perf_counter() - start


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
        runtimes = {
            "torch_fp32": (base, "fp32"),
            "torch_bf16": (base, "bf16"),
            "ort_fp32": (variant(base, OnnxSceneModel, "ort32", onnx_path=str(fp32_path)), "fp32"),
            "ort_int8": (variant(base, OnnxSceneModel, "ort8", onnx_path=str(int8_path)), "fp32"),
        }
        results: dict[str, Any] = {}
        reference = None
        for name, (handle, precision) in runtimes.items():
            run(handle, pair, precision)  # warm: build the model or session once
            prob, seconds = run(handle, pair, precision)
            reference = prob if reference is None else reference
            valid = np.isfinite(prob) & np.isfinite(reference)
            diff = np.abs(prob[valid] - reference[valid])
            results[name] = {
                "seconds": round(seconds, 2),
                "mpx_per_s": round(args.size**2 / 1e6 / seconds, 3),
                "change_f1": f1(np.nan_to_num(prob), truth),
                "max_diff_from_torch_fp32": float(f"{diff.max():.3g}"),
                "mean_diff_from_torch_fp32": float(f"{diff.mean():.3g}"),
            }
            print(name, results[name], flush=True)
    out = {
        "benchmark": "runtimes",
        "protocol": f"predict_scene on sample world seed 0 at {args.size} px, in memory "
        "(float32 encoding), the forward pass swapped; each timed on its second run; F1 of "
        "change at 0.5 against the sample truth; int8 calibrated on "
        f"{CALIBRATION_BATCHES} batches of normalised tiles from sample world seed 1",
        "model": f"sample detector: {RECIPE['arch']} {RECIPE['backbone']}",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, no GPU",
        "not_measured": "torch.compile, OpenVINO, larger tiles",
        "runtimes": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
