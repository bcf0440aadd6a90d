"""The fully convolutional change networks of Daudt, Le Saux and Boulch (ICIP 2018).

"Fully Convolutional Siamese Networks for Change Detection": three small U-Nets (about
1.35 M parameters) trained from scratch, the reference baselines of the field.

- ``fc_ef`` (early fusion): the two dates stacked as one image of ``2 c`` bands.
- ``fc_siam_conc``: one encoder shared by both dates; each skip connection carries the
  before and after features side by side.
- ``fc_siam_diff``: the same shared encoder; each skip carries |after - before|.

Encoder: four levels of 16, 32, 64 and 128 channels (two, two, three and three 3x3
convolutions with batch norm, ReLU and dropout), each followed by 2x2 max pooling;
``width`` sets the first level's channels (16 in the paper) and the rest follow it.
Decoder: transposed convolutions back up, each joined to its level's skip connection.
Any input size works: upsampled maps are padded to their skip's size, as in the paper's
code.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from cdtools.errors import ParameterError
from cdtools.models.backbone import check_from_scratch
from cdtools.models.siamese_unet import fuse_dates

Fusion = Literal["early", "concat", "diff"]
CONVS = (2, 2, 3, 3)


def _block(channels_in: int, channels_out: int, convs: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [
            nn.Conv2d(channels_in if i == 0 else channels_out, channels_out, 3, padding=1),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
            nn.Dropout2d(dropout),
        ]
    return nn.Sequential(*layers)


def _decoder_block(channels_in: int, widths: tuple[int, ...], dropout: float) -> nn.Sequential:
    """3x3 convolutions through ``widths``, each with batch norm, ReLU and dropout."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [
            nn.Conv2d(channels_in, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Dropout2d(dropout),
        ]
        channels_in = width
    return nn.Sequential(*layers)


class FullyConvolutionalCD(nn.Module):
    """Change logits ``(b, 1, h, w)`` from a ``(before, after)`` tuple of ``(b, c, h, w)``.

    Args:
        in_channels: bands of each date.
        backbone: must be None (these networks have their own encoder); accepted so
            every architecture takes the same arguments.
        pretrained: must be False or "auto": these networks are trained from scratch.
        dropout: dropout after every convolution (0.2 in the paper).
        width: channels of the first level, doubled at each of the next three (16 in
            the paper; 32 has about four times the parameters and computation).

    Example:
        >>> model = FCSiamDiff(3)
        >>> x = torch.zeros(2, 3, 64, 64)
        >>> model((x, x)).shape
        torch.Size([2, 1, 64, 64])
    """

    output = "logit"
    fusion: ClassVar[Fusion]

    def __init__(
        self,
        in_channels: int,
        *,
        backbone: str | None = None,
        pretrained: bool | str = False,
        dropout: float = 0.2,
        width: int = 16,
    ) -> None:
        super().__init__()
        if backbone is not None:
            raise ParameterError(
                f"{type(self).__name__} has its own encoder and takes no backbone (got "
                f"{backbone!r}); backbones are for siamese_unet, stanet, bit and tinycd."
            )
        self.weights_source = check_from_scratch(type(self).__name__, pretrained)
        if width < 1:
            raise ParameterError(f"width must be at least 1 channel, got {width}.")
        widths = (width, 2 * width, 4 * width, 8 * width)
        first = 2 * in_channels if self.fusion == "early" else in_channels
        self.encoder = nn.ModuleList(
            _block(c_in, c_out, n, dropout)
            for c_in, c_out, n in zip((first, *widths[:-1]), widths, CONVS, strict=True)
        )
        skip = 2 if self.fusion == "concat" else 1
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(w, w, 3, stride=2, padding=1, output_padding=1)
            for w in reversed(widths)
        )
        # Level by level from the deepest: (upsampled + skip) -> decoder widths
        # (128, 128, 64), (64, 64, 32), (32, 16) and (16,) at the paper's width.
        w1, w2, w3, w4 = widths
        outs = ((w4, w4, w3), (w3, w3, w2), (w2, w1), (w1,))
        self.decoder = nn.ModuleList(
            _decoder_block(w + skip * w, out, dropout)
            for w, out in zip(reversed(widths), outs, strict=True)
        )
        self.head = nn.Conv2d(w1, 1, 3, padding=1)

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        before, after = pair
        if self.fusion == "early":
            skips, x = self._encode(torch.cat([before, after], dim=1))
        else:  # one pass over both dates stacked along the batch: shared weights and statistics
            features, x = self._encode(torch.cat([before, after]))
            skips = [fuse_dates(f, self.fusion) for f in features]
            x = x.chunk(2)[1]  # the decoder starts from the after date's deepest features
        for up, decode, skip in zip(self.up, self.decoder, reversed(skips), strict=True):
            x = up(x)
            x = F.pad(x, (0, skip.shape[-1] - x.shape[-1], 0, skip.shape[-2] - x.shape[-2]))
            x = decode(torch.cat([x, skip], dim=1))
        return self.head(x)

    def _encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        return skips, x

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The encoder, frozen by ``ChangeDetector.freeze``."""
        return list(self.encoder.parameters())


class FCEF(FullyConvolutionalCD):
    """FC-EF: both dates stacked as one ``2 c``-band image through one U-Net."""

    fusion = "early"


class FCSiamConc(FullyConvolutionalCD):
    """FC-Siam-conc: a shared encoder; skips carry both dates' features."""

    fusion = "concat"


class FCSiamDiff(FullyConvolutionalCD):
    """FC-Siam-diff: a shared encoder; skips carry |after - before| of the features."""

    fusion = "diff"
