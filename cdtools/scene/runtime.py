"""Which library runs predict_scene's forward pass: torch (the default), ONNX Runtime or
OpenVINO, the latter two on the model's ONNX export, on the CPU.

Measured on a 2-core CPU with AVX-512 BF16 (``benchmarks/runtimes.py``, the sample model):
torch bf16 1.43 Mpx/s, OpenVINO bf16 1.92, torch fp32 0.55, ONNX Runtime fp32 0.63,
OpenVINO fp32 0.62, with change F1 within 0.0004 of torch fp32 for all. Run to run, one
runtime's figure moved by up to 1.9x, so torch stays the default: it needs nothing more
installed, and the others are there for machines and deployments where they win.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cdtools.errors import CdtoolsError, ParameterError

Runtime = Literal["torch", "onnxruntime", "openvino"]
RUNTIMES = ("torch", "onnxruntime", "openvino")
# the precisions each exported runtime can honour on the CPU ("auto": bf16 where the CPU
# has it and the runtime can, else fp32)
RUNTIME_PRECISIONS = {"onnxruntime": ("auto", "fp32"), "openvino": ("auto", "fp32", "bf16")}
Session = Callable[[np.ndarray, np.ndarray], np.ndarray]


class MissingRuntimeError(CdtoolsError, ImportError):
    """The runtime asked for is not installed."""


def check_runtime(runtime: str, *, device: str | None, precision: str, tta: bool) -> None:
    """Refuse, before any work, a runtime that is unknown or not installed, or options it
    cannot honour."""
    if runtime not in RUNTIMES:
        raise ParameterError(f"runtime must be torch, onnxruntime or openvino, got {runtime!r}.")
    if runtime == "torch":
        return
    if importlib.util.find_spec(runtime) is None:
        raise MissingRuntimeError(
            f"runtime={runtime!r} needs the {runtime} package, which is not installed: "
            f"pip install 'cdtools[{runtime}]' (or runtime='torch')."
        )
    if device not in (None, "cpu"):
        raise ParameterError(
            f"runtime={runtime!r} runs on the CPU here; for device={device!r} use runtime='torch'."
        )
    if tta:
        raise ParameterError(f"tta=True needs runtime='torch'; {runtime} runs the plain model.")
    takes = RUNTIME_PRECISIONS[runtime]
    if precision not in takes:
        raise ParameterError(
            f"runtime={runtime!r} takes precision {', '.join(takes)} on the CPU, not "
            f"{precision!r}; use runtime='torch' for {precision}."
        )


def exported_session(model: Any, spec: Any, runtime: str, precision: str, tile: int) -> Session:
    """A function from normalised ``(n, c, h, w)`` before/after batches to probability
    ``(n, h, w)``, running ``model`` (a torch module, on the CPU) exported to ONNX in
    ``runtime`` at ``precision`` ("fp32" or "bf16")."""
    from cdtools.learn.onnx_export import write_onnx
    from cdtools.models import to_probability

    with tempfile.TemporaryDirectory(prefix="cdtools-onnx-") as folder:
        path = write_onnx(model, partial(to_probability, model), Path(folder) / "m.onnx", spec,
                          tile=tile)  # fmt: skip
        run = _onnxruntime(path) if runtime == "onnxruntime" else _openvino(path, precision)

    def session(before: np.ndarray, after: np.ndarray) -> np.ndarray:
        feed = {"before": before.astype(np.float32), "after": after.astype(np.float32)}
        return run(feed)[:, 0]

    return session


def _onnxruntime(path: Path) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda feed: session.run(None, feed)[0]


def _openvino(path: Path, precision: str) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    import openvino as ov

    hint = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
    compiled = ov.Core().compile_model(str(path), "CPU", hint)
    return lambda feed: next(iter(compiled(feed).values()))
