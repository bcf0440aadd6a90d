"""BIT, the Bitemporal Image Transformer (Chen, Qi & Shi, TGRS 2021).

Written from the paper: a ResNet whose last stages are dilated gives each date's
features at 1/4 of the input size (``channels`` maps). A semantic tokenizer pools each
date into a few tokens with learned spatial attention; a transformer encoder relates
the tokens of both dates (with learned positional embeddings); a transformer decoder
projects the context-rich tokens back onto each date's pixels (cross-attention, pixels
as queries). The prediction head classifies |features_after - features_before|.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cdtools.models.backbone import Pretrained, make_encoder


class Attention(nn.Module):
    """Multi-head attention of queries ``x`` over ``context`` (self-attention when they match)."""

    def __init__(self, dim: int, *, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q = self.to_q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = (
            t.view(b, context.shape[1], self.heads, -1).transpose(1, 2)
            for t in self.to_kv(context).chunk(2, dim=-1)
        )
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, n, -1))


class TransformerBlock(nn.Module):
    """Pre-norm attention and MLP with residuals; cross-attention when a context is given."""

    def __init__(self, dim: int, *, heads: int, dim_head: int, mlp_dim: int) -> None:
        super().__init__()
        self.norm_x = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.attention = Attention(dim, heads=heads, dim_head=dim_head)
        self.mlp = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim)
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x_norm = self.norm_x(x)
        context_norm = x_norm if context is None else self.norm_context(context)
        x = x + self.attention(x_norm, context_norm)
        return x + self.mlp(x)


class BIT(nn.Module):
    """Change logits ``(b, 1, h, w)`` from a ``(before, after)`` tuple of ``(b, c, h, w)`` tensors.

    Example:
        >>> model = BIT(3, pretrained=False)
        >>> x = torch.zeros(1, 3, 64, 64)
        >>> model((x, x)).shape
        torch.Size([1, 1, 64, 64])
    """

    output = "logit"

    def __init__(
        self,
        in_channels: int,
        *,
        backbone: str = "resnet18",
        pretrained: Pretrained = "auto",
        channels: int = 32,
        token_len: int = 4,
        enc_depth: int = 1,
        dec_depth: int = 8,
        heads: int = 8,
        dim_head: int = 64,
        dec_dim_head: int = 8,
    ) -> None:
        super().__init__()
        # Stages up to 1/16, dilated to stay at 1/8, as the paper's ResNet18_S4.
        self.encoder, self.weights_source = make_encoder(
            backbone, in_channels, pretrained=pretrained, depth=4, output_stride=8
        )
        self.reduce = nn.Conv2d(self.encoder.out_channels[-1], channels, 3, padding=1)
        self.tokenizer = nn.Conv2d(channels, token_len, 1, bias=False)
        self.positions = nn.Parameter(torch.randn(1, 2 * token_len, channels))
        mlp = 2 * channels
        self.token_encoder = nn.ModuleList(
            TransformerBlock(channels, heads=heads, dim_head=dim_head, mlp_dim=mlp)
            for _ in range(enc_depth)
        )
        self.token_decoder = nn.ModuleList(
            TransformerBlock(channels, heads=heads, dim_head=dec_dim_head, mlp_dim=mlp)
            for _ in range(dec_depth)
        )
        self.head = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, 1, 3, padding=1),
        )

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Features at 1/4 of the input size."""
        x = self.encoder(images)[-1]
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.reduce(x)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Semantic tokens ``(b, L, c)``: features pooled by L learned spatial attention maps."""
        attention = self.tokenizer(x).flatten(2).softmax(dim=-1)  # (b, L, hw)
        return torch.einsum("bln,bcn->blc", attention, x.flatten(2))

    def forward(self, pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        before, after = pair
        x_before, x_after = self.features(torch.cat([before, after])).chunk(2)
        tokens = torch.cat([self.tokens(x_before), self.tokens(x_after)], dim=1) + self.positions
        for block in self.token_encoder:
            tokens = block(tokens)
        t_before, t_after = tokens.chunk(2, dim=1)
        refined = [self._decode(x, t) for x, t in ((x_before, t_before), (x_after, t_after))]
        diff = (refined[1] - refined[0]).abs()
        diff = F.interpolate(diff, size=before.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(diff)

    def _decode(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        pixels = x.flatten(2).transpose(1, 2)
        for block in self.token_decoder:
            pixels = block(pixels, tokens)
        return pixels.transpose(1, 2).reshape(b, c, h, w)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())
