"""Precision of a forward pass: the names, and what "auto" means on a device.

Kept apart from :mod:`cdtools.learn.autocast` (bf16 training, a fastai callback) so that
inference (:func:`cdtools.predict_scene`) does not import fastai.
"""

from __future__ import annotations

from typing import Literal, get_args

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


def on_gpu(device: str | None) -> bool:
    """Whether ``device`` (default: this machine's best) is a CUDA GPU."""
    import torch

    return device.startswith("cuda") if device else torch.cuda.is_available()


def resolve_precision(precision: Precision, device: str) -> str:
    """What "auto" means on ``device``: fp16 on a GPU, bf16 on CPUs that have it, else fp32."""
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "fp16"
    import torch

    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
