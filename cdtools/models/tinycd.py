"""TinyCD (Codegoni, Lombardi & Ferrari, Neural Computing and Applications 2023).

"TinyCD: a (not so) deep learning model for change detection", written from the paper:
about 0.28 M parameters, trained from scratch here.

- Siamese backbone: the first blocks of an EfficientNet-B4 (stem and stages 1-3), shared
  by both dates and run once on them stacked along the batch. It gives features at
  1/2 (24 channels), 1/4 (32) and 1/8 (56) of the input size.
- Mix and Attention Mask Blocks (MAMB): the two dates' channels are interleaved
  (b0, a0, b1, a1, ...) and each before/after pair is mixed by a grouped 3x3
  convolution (PReLU, instance norm); a pixel-wise MLP (1x1 convolutions) turns the
  mixed maps into a one-channel attention mask. One MAMB works on the raw images (1/1),
  one on each of the 1/2 and 1/4 features; the 1/8 features are only mixed.
- Upsampling path: from 1/8, each step upsamples bilinearly to the next level, multiplies
  by that level's mask, then a depthwise 3x3 and a pointwise convolution (PReLU,
  instance norm after each) set the width (64, 64, 32).
- Classifier: a pixel-wise MLP 32 -> 16 -> 8 -> 1.

Deviations from the paper: the classifier returns logits (no final sigmoid, which the
loss applies); each step upsamples to its skip's size instead of a fixed size, so any
input size of at least 16 x 16 works; the first convolution takes any band count; and
``backbone`` may name another EfficientNet (b0-b7) or a ResNet-18/34, whose stem,
layer1 and layer2 give the 1/2, 1/4 and 1/8 features (ChangeDetector's default
"resnet18" therefore builds a ResNet-18 trunk of about 0.7 M parameters; pass
``backbone="efficientnet-b4"`` for the paper's).

Measured here: from scratch it wants a large learning rate (1e-2 with one-cycle; the
paper uses AdamW at 3.6e-3). Its few parameters and FLOPs do not make it faster on a CPU
than a ResNet-18 U-Net: depthwise convolutions, squeeze-excitation and instance norm are
memory-bound there. Instance norm also makes each tile's output depend on the tile's
extent, so predict on tiles of the training chip size.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cdtools.errors import ParameterError
from cdtools.models.backbone import check_from_scratch

EFFICIENTNETS = tuple(f"efficientnet-b{i}" for i in range(8))
RESNETS = ("resnet18", "resnet34")


def _trunk(backbone: str, in_channels: int) -> nn.ModuleList:
    """Three stages of a randomly initialised torchvision network: 1/2, 1/4 and 1/8."""
    import torchvision

    name = backbone.replace("_", "-")
    if name in EFFICIENTNETS:
        features = getattr(torchvision.models, name.replace("-", "_"))(weights=None).features
        stem = features[0][0]
        features[0][0] = nn.Conv2d(in_channels, stem.out_channels, 3, 2, 1, bias=False)
        return nn.ModuleList([nn.Sequential(features[0], features[1]), features[2], features[3]])
    if name in RESNETS:
        net = getattr(torchvision.models, name)(weights=None)
        net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        return nn.ModuleList([stem, nn.Sequential(net.maxpool, net.layer1), net.layer2])
    known = ", ".join((*EFFICIENTNETS, *RESNETS))
    raise ParameterError(
        f"tinycd has no backbone {backbone!r}; use one of {known} "
        "(the paper's is 'efficientnet-b4')."
    )


def _widths(trunk: nn.ModuleList, in_channels: int) -> list[int]:
    """Channels of each stage's output, from one small forward pass in eval mode."""
    trunk.eval()
    x, widths = torch.zeros(1, in_channels, 32, 32), []
    with torch.no_grad():
        for stage in trunk:
            x = stage(x)
            widths.append(x.shape[1])
    trunk.train()
    return widths


def pixelwise_mlp(widths: Sequence[int], *, last_activation: bool) -> nn.Sequential:
    """1x1 convolutions through ``widths`` with PReLU between (and after, if asked)."""
    layers: list[nn.Module] = []
    for i, (c_in, c_out) in enumerate(pairwise(widths)):
        layers.append(nn.Conv2d(c_in, c_out, 1))
        if last_activation or i < len(widths) - 2:
            layers.append(nn.PReLU())
    return nn.Sequential(*layers)


class MixingBlock(nn.Module):
    """Interleave two dates' channels and mix each before/after pair (grouped 3x3 conv)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mix = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 3, padding=1, groups=channels),
            nn.PReLU(),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        b, c, h, w = before.shape
        return self.mix(torch.stack([before, after], dim=2).reshape(b, 2 * c, h, w))


class MixAttentionMask(nn.Module):
    """MAMB: the mixed dates through a pixel-wise MLP, down to a one-channel mask."""

    def __init__(self, channels: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.mixing = MixingBlock(channels)
        self.mlp = pixelwise_mlp([channels, *hidden, 1], last_activation=True)

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.mixing(before, after))


class UpMask(nn.Module):
    """Upsample to the mask's size, multiply by the mask, depthwise then pointwise conv."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels_in, channels_in, 3, padding=1, groups=channels_in),
            nn.PReLU(),
            nn.InstanceNorm2d(channels_in),
            nn.Conv2d(channels_in, channels_out, 1),
            nn.PReLU(),
            nn.InstanceNorm2d(channels_out),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=mask.shape[-2:], mode="bilinear", align_corners=True)
        return self.conv(x * mask)


class TinyCD(nn.Module):
    """Change logits ``(b, 1, h, w)`` from a ``(before, after)`` tuple of ``(b, c, h, w)`` tensors.

    Any band count and any size of at least 16 x 16 pixels (multiples of 8 keep the
    levels exactly aligned; 128 and 256 chips are the usual ones).

    Args:
        in_channels: bands of each date.
        backbone: "efficientnet-b4" (the paper's), another "efficientnet-b0" ... "b7", or
            "resnet18" / "resnet34"; only the blocks down to 1/8 are kept.
        pretrained: False or "auto" (both mean random initialisation): TinyCD is trained
            from scratch here; True or a weight file raise :class:`ParameterError`.
        decoder_channels: widths of the three upsampling steps (64, 64, 32 in the paper).

    Reference:
        Codegoni, A., Lombardi, G. & Ferrari, A. TINYCD: a (not so) deep learning model
        for change detection. Neural Computing and Applications 35, 8471-8486 (2023).

    Example:
        >>> model = TinyCD(3, backbone="efficientnet-b4", pretrained=False)
        >>> x = torch.zeros(2, 3, 64, 64)
        >>> model((x, x)).shape
        torch.Size([2, 1, 64, 64])
        >>> sum(p.numel() for p in model.parameters()) < 300_000
        True
    """

    output = "logit"

    def __init__(
        self,
        in_channels: int,
        *,
        backbone: str = "efficientnet-b4",
        pretrained: bool | str | Path = False,
        decoder_channels: tuple[int, int, int] = (64, 64, 32),
    ) -> None:
        super().__init__()
        self.weights_source = check_from_scratch("tinycd", pretrained)
        if len(decoder_channels) != 3:
            raise ParameterError(f"decoder_channels needs 3 widths, got {decoder_channels!r}.")
        self.encoder = _trunk(backbone, in_channels)
        c2, c4, c8 = _widths(self.encoder, in_channels)
        self.masks = nn.ModuleList(
            [
                MixAttentionMask(in_channels, (10, 5)),  # 1/1, on the images themselves
                MixAttentionMask(c2, (c2 // 2, c2 // 4)),
                MixAttentionMask(c4, (c4 // 2, c4 // 4)),
            ]
        )
        self.mix = MixingBlock(c8)
        d8, d4, d2 = decoder_channels
        self.up = nn.ModuleList([UpMask(c8, d8), UpMask(d8, d4), UpMask(d4, d2)])
        self.classifier = pixelwise_mlp(
            [d2, max(d2 // 2, 1), max(d2 // 4, 1), 1], last_activation=False
        )

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        before, after = pair
        masks = [self.masks[0](before, after)]
        x = torch.cat([before, after])  # one pass: shared weights and batch statistics
        for i, stage in enumerate(self.encoder):
            x = stage(x)
            if i < 2:
                masks.append(self.masks[i + 1](*x.chunk(2)))
        y = self.mix(*x.chunk(2))
        for up, mask in zip(self.up, reversed(masks), strict=True):
            y = up(y, mask)
        return self.classifier(y)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The siamese backbone, frozen by ``ChangeDetector.freeze``."""
        return list(self.encoder.parameters())
