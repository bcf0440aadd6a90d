"""ONNX export of a change model: two normalised dates in, change probability out.

The file carries the model spec (statistics, threshold, bands) in its metadata, so it can
be used without cdtools; :mod:`cdtools.scene.runtime` runs it in ONNX Runtime or OpenVINO.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from cdtools.io.raster import atomic_path
from cdtools.learn.package import ModelSpec


class _ProbabilityModel(torch.nn.Module):
    """Two inputs, one output: what the ONNX file computes."""

    def __init__(self, model: torch.nn.Module, to_prob: Any) -> None:
        super().__init__()
        self.model, self.to_prob = model, to_prob

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        return self.to_prob(self.model((before, after)))


def write_onnx(
    model: torch.nn.Module, to_prob: Any, path: Path, spec: ModelSpec, *, tile: int | None = None
) -> Path:
    """Export ``model`` to ONNX: inputs "before" and "after" (normalised, ``(b, c, h, w)``),
    output "probability" ``(b, 1, h, w)``. The batch is dynamic, and so are height and width
    unless the model is laid out for one size (STANet's pyramid attention): then ``tile``.
    The model spec (statistics, threshold, bands) goes into the file's metadata."""
    import onnx

    tile = tile or spec.chip_size
    wrapper = _ProbabilityModel(model, to_prob).eval()
    example = torch.zeros(1, spec.in_channels, tile, tile)
    fixed = getattr(model, "fixed_size", False)
    dynamic = {0: "batch"} if fixed else {0: "batch", 2: "height", 3: "width"}
    with atomic_path(path) as tmp:
        torch.onnx.export(
            wrapper,
            (example, example),
            str(tmp),
            input_names=["before", "after"],
            output_names=["probability"],
            dynamic_axes={"before": dynamic, "after": dynamic, "probability": dynamic},
            dynamo=False,
        )
        proto = onnx.load(str(tmp))
        proto.metadata_props.add(key="cdtools_spec", value=json.dumps(spec.to_json()))
        onnx.save(proto, str(tmp))
    return path
