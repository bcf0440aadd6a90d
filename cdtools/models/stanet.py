"""STANet (Chen & Shi, Remote Sensing 2020): spatial-temporal attention and a distance map.

Written from the paper: a shared ResNet extracts features of each date; its four stages
are brought to 1/4 of the input size, concatenated and reduced to ``channels`` feature
maps. The spatial-temporal attention module lets every pixel of both dates attend to
every other (BAM), or does so inside sub-regions at several scales (PAM, the pyramid).
The output is the per-pixel Euclidean distance between the two dates' updated features,
upsampled to the input size; a pixel is change where the distance exceeds margin / 2.
Training uses the batch-balanced contrastive loss
(``cdtools.learn.losses.BatchBalancedContrastiveLoss``).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from cdtools.models.backbone import Pretrained, make_encoder

AttentionType = Literal["PAM", "BAM"]


class SelfAttention(nn.Module):
    """BAM: self-attention over the pixels of both dates together (one spatio-temporal set)."""

    def __init__(self, channels: int, *, downsample: int = 1) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, max(channels // 8, 1), 1)
        self.key = nn.Conv2d(channels, max(channels // 8, 1), 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.downsample = downsample

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """Attention output (without the residual) for ``(b, c, h, 2w)``: dates side by side."""
        x = torch.cat([before, after], dim=3)
        size = x.shape[-2:]
        if self.downsample > 1:
            x = F.avg_pool2d(x, self.downsample)
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (b, n, c')
        k = self.key(x).flatten(2).transpose(1, 2)
        v = self.value(x).flatten(2).transpose(1, 2)  # (b, n, c)
        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, c, h, w)
        if self.downsample > 1:
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        return y


class PyramidAttention(nn.Module):
    """PAM: BAM inside each of s x s sub-regions, for several scales s, then a 1x1 conv."""

    def __init__(
        self, channels: int, *, scales: tuple[int, ...] = (1, 2, 4, 8), downsample: int = 1
    ):
        super().__init__()
        self.scales = scales
        self.attention = nn.ModuleList(
            SelfAttention(channels, downsample=downsample) for _ in scales
        )
        self.merge = nn.Conv2d(channels * len(scales), channels, 1, bias=False)

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        h, w = int(before.shape[-2]), int(before.shape[-1])
        outputs = []
        for scale, attention in zip(self.scales, self.attention, strict=True):
            rows = _splits(h, scale)
            cols = _splits(w, scale)
            out = torch.zeros_like(torch.cat([before, after], dim=3))
            for r0, r1 in rows:
                for c0, c1 in cols:
                    part = attention(before[..., r0:r1, c0:c1], after[..., r0:r1, c0:c1])
                    width = c1 - c0
                    out[..., r0:r1, c0:c1] = part[..., :width]
                    out[..., r0:r1, w + c0 : w + c1] = part[..., width:]
            outputs.append(out)
        return self.merge(torch.cat(outputs, dim=1))


def _splits(length: int, parts: int) -> list[tuple[int, int]]:
    edges = [round(i * length / parts) for i in range(parts + 1)]
    return [(a, b) for a, b in pairwise(edges) if b > a]


class STANet(nn.Module):
    """Distance maps ``(b, 1, h, w)`` from a ``(before, after)`` tuple of ``(b, c, h, w)`` tensors.

    Example:
        >>> model = STANet(3, pretrained=False, attention_type="BAM")
        >>> x = torch.zeros(1, 3, 64, 64)
        >>> model((x, x)).shape
        torch.Size([1, 1, 64, 64])
    """

    output = "distance"
    fixed_size = True  # PAM's sub-regions are laid out for one input size (ONNX export)

    def __init__(
        self,
        in_channels: int,
        *,
        backbone: str = "resnet18",
        pretrained: Pretrained = "auto",
        attention_type: AttentionType = "PAM",
        channels: int = 64,
        margin: float = 2.0,
        attention_downsample: int = 1,
    ) -> None:
        super().__init__()
        if attention_type not in ("PAM", "BAM"):
            raise ValueError(f"attention_type must be 'PAM' or 'BAM', got {attention_type!r}")
        self.encoder, self.weights_source = make_encoder(
            backbone, in_channels, pretrained=pretrained
        )
        stage_channels = self.encoder.out_channels[2:]  # the four stages at 1/4 ... 1/32
        self.lateral = nn.ModuleList(_conv_bn_relu(c, 96, 1) for c in stage_channels)
        self.fuse = nn.Sequential(
            _conv_bn_relu(96 * len(stage_channels), 256, 3), nn.Conv2d(256, channels, 1)
        )
        if attention_type == "BAM":
            self.attention: nn.Module = SelfAttention(channels, downsample=attention_downsample)
        else:
            self.attention = PyramidAttention(channels, downsample=attention_downsample)
        self.margin = margin

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """One date's feature maps at 1/4 of the input size."""
        stages = self.encoder(image)[2:]
        size = stages[0].shape[-2:]
        lateral = [
            F.interpolate(conv(s), size=size, mode="bilinear", align_corners=False)
            for conv, s in zip(self.lateral, stages, strict=True)
        ]
        return self.fuse(torch.cat(lateral, dim=1))

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        before, after = pair
        both = self.features(torch.cat([before, after]))
        f_before, f_after = both.chunk(2)
        update = self.attention(f_before, f_after)
        width = f_before.shape[-1]
        z_before = f_before + update[..., :width]
        z_after = f_after + update[..., width:]
        size = before.shape[-2:]
        z_before = F.interpolate(z_before, size=size, mode="bilinear", align_corners=False)
        z_after = F.interpolate(z_after, size=size, mode="bilinear", align_corners=False)
        return torch.linalg.vector_norm(z_after - z_before, dim=1, keepdim=True)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())


def _conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )
