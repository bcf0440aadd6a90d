"""Siamese U-Net: one shared encoder for both dates, features fused per level, a U-Net decoder.

The encoder runs once on the two dates stacked along the batch, so both see exactly the
same weights and batch-norm statistics. ``fusion="diff"`` keeps |after - before| of
each level's features (what changed, whatever the order of dates); "concat" keeps both.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from cdtools.models.backbone import Pretrained, make_encoder

Fusion = Literal["diff", "concat"]


def fuse_dates(features: torch.Tensor, fusion: Fusion) -> torch.Tensor:
    """One level's features of both dates (before then after, stacked along the batch)
    fused: |after - before| for "diff", both dates along the channels for "concat"."""
    before, after = features.chunk(2)
    if fusion == "diff":
        return (after - before).abs()
    return torch.cat([before, after], dim=1)


class SiameseUNet(nn.Module):
    """Change logits ``(b, 1, h, w)`` from a ``(before, after)`` tuple of ``(b, c, h, w)`` tensors.

    Example:
        >>> model = SiameseUNet(3, backbone="resnet18", pretrained=False)
        >>> x = torch.zeros(2, 3, 64, 64)
        >>> model((x, x)).shape
        torch.Size([2, 1, 64, 64])
    """

    output = "logit"

    def __init__(
        self,
        in_channels: int,
        *,
        backbone: str = "resnet18",
        pretrained: Pretrained = "auto",
        fusion: Fusion = "diff",
        decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16),
    ) -> None:
        from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder

        super().__init__()
        if fusion not in ("diff", "concat"):
            raise ValueError(f"fusion must be 'diff' or 'concat', got {fusion!r}")
        self.fusion = fusion
        self.encoder, self.weights_source = make_encoder(
            backbone, in_channels, pretrained=pretrained
        )
        channels = list(self.encoder.out_channels)
        if fusion == "concat":
            channels = [2 * c for c in channels]
        self.decoder = UnetDecoder(
            encoder_channels=channels,
            decoder_channels=decoder_channels,
            n_blocks=len(decoder_channels),
        )
        self.head = nn.Conv2d(decoder_channels[-1], 1, kernel_size=3, padding=1)

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        before, after = pair
        features = self.encoder(torch.cat([before, after]))
        fused = [fuse_dates(f, self.fusion) for f in features]
        return self.head(self.decoder(fused))

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The pretrained part, frozen by ``ChangeDetector.freeze``."""
        return list(self.encoder.parameters())
