"""Change-detection architectures, one file each, and the registry that names them.

Every model takes a ``(before, after)`` tuple of ``(b, c, h, w)`` tensors and returns a
``(b, 1, h, w)`` map whose kind is its ``output`` attribute: "logit" (change logits) or
"distance" (STANet's feature distance, change where it exceeds ``margin / 2``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from cdtools.models.bit import BIT
from cdtools.models.fc import FCEF, FCSiamConc, FCSiamDiff
from cdtools.models.siamese_unet import SiameseUNet
from cdtools.models.stanet import STANet
from cdtools.models.tinycd import TinyCD

Arch = Literal[
    "fc_siam_conc", "fc_siam_diff", "fc_ef", "tinycd", "siamese_unet", "stanet", "bit"
]  # fmt: skip
"""The names of the architectures (the keys of :data:`ARCHITECTURES`)."""

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "siamese_unet": SiameseUNet,
    "stanet": STANet,
    "bit": BIT,
    "fc_ef": FCEF,
    "fc_siam_conc": FCSiamConc,
    "fc_siam_diff": FCSiamDiff,
    "tinycd": TinyCD,
}


def default_backbone(arch: str) -> str | None:
    """The encoder an architecture uses when none is named (None: it has its own only)."""
    return inspect.signature(ARCHITECTURES[arch]).parameters["backbone"].default


def to_probability(model: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """A model's raw ``(b, 1, h, w)`` output as change probability in [0, 1]."""
    if model.output == "distance":  # STANet: 0.5 exactly at distance = margin / 2
        margin = model.margin
        return torch.sigmoid(4.0 * (output - margin / 2) / margin)
    return torch.sigmoid(output)


__all__ = [
    "ARCHITECTURES",
    "BIT",
    "FCEF",
    "Arch",
    "FCSiamConc",
    "FCSiamDiff",
    "STANet",
    "SiameseUNet",
    "TinyCD",
    "default_backbone",
    "to_probability",
]
