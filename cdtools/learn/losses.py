"""Losses for change maps; every one ignores pixels labelled 255.

Targets are ``(b, h, w)`` int64 masks (0 = no change, 1 = change, 255 = ignore).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cdtools.chips.labels import IGNORE
from cdtools.errors import ParameterError


class BCEDiceLoss(nn.Module):
    """A pixel loss plus soft Dice of the change class, over labelled pixels.

    The pixel loss learns every pixel; Dice keeps the rare change class from being
    swamped. The pixel loss is binary cross-entropy, or the focal loss (Lin et al. 2017)
    with ``focal_gamma > 0``, which weighs down the many easy pixels; ``pos_weight``
    weighs change pixels more in it. ``tversky_beta`` turns Dice into the Tversky loss
    (Salehi et al. 2017): the weight of missed change against false change in the overlap
    term, 0.5 being Dice and more favouring recall. ``lovasz_weight`` adds the Lovász hinge
    (Berman et al. 2018), a surrogate of the change class's IoU over the batch.
    ``ignore_edge`` ignores the pixels within that many pixels of an edge between change
    and no change: hand-drawn labels are least certain there (on AirChange a band of 2
    did not help: benchmarks/recipe_airchange.py).

    Example:
        >>> loss = BCEDiceLoss()
        >>> loss(torch.zeros(2, 1, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long)).item() > 0
        True
    """

    def __init__(
        self,
        *,
        bce_weight: float = 1.0,
        dice_weight: float = 1.0,
        smooth: float = 1.0,
        focal_gamma: float = 0.0,
        pos_weight: float = 1.0,
        tversky_beta: float = 0.5,
        lovasz_weight: float = 0.0,
        ignore_edge: int = 0,
    ):
        super().__init__()
        if not 0.0 < tversky_beta < 1.0:
            raise ParameterError(
                f"tversky_beta must be between 0 and 1 (0.5 is Dice), got {tversky_beta}."
            )
        if ignore_edge < 0:
            raise ParameterError(f"ignore_edge must be 0 or more pixels, got {ignore_edge}.")
        self.ignore_edge = ignore_edge
        self.bce_weight, self.dice_weight, self.smooth = bce_weight, dice_weight, smooth
        self.focal_gamma, self.pos_weight = focal_gamma, pos_weight
        self.tversky_beta, self.lovasz_weight = tversky_beta, lovasz_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits[:, 0].float()
        valid = target != IGNORE
        if not valid.any():
            return logits.sum() * 0.0
        truth = (target == 1).float()
        if self.ignore_edge:
            valid = valid & ~label_edges(truth, self.ignore_edge)
        loss = self.bce_weight * self._pixel_loss(
            logits[valid], truth[valid]
        ) + self.dice_weight * self._dice(torch.sigmoid(logits) * valid, truth * valid)
        if self.lovasz_weight:
            loss = loss + self.lovasz_weight * lovasz_hinge(logits[valid], truth[valid])
        return loss

    def _pixel_loss(self, logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        if self.focal_gamma == 0 and self.pos_weight == 1:  # plain BCE, as before these options
            return F.binary_cross_entropy_with_logits(logits, truth)
        weight = 1.0 + (self.pos_weight - 1.0) * truth
        loss = F.binary_cross_entropy_with_logits(logits, truth, reduction="none")
        if self.focal_gamma > 0:  # (1 - p_t)^gamma, p_t the probability of the true class
            p_true = torch.exp(-loss)
            loss = (1 - p_true) ** self.focal_gamma * loss
        return (weight * loss).sum() / weight.sum()

    def _dice(self, prob: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        """Soft Dice loss, or Tversky's when ``tversky_beta`` is not 0.5 (the same at 0.5:
        overlap / (overlap + 0.5 false + 0.5 missed) is Dice)."""
        overlap = (prob * truth).sum()
        false, missed = (prob * (1 - truth)).sum(), ((1 - prob) * truth).sum()
        beta = self.tversky_beta
        index = (overlap + self.smooth / 2) / (
            overlap + (1 - beta) * false + beta * missed + self.smooth / 2
        )
        return 1 - index


def label_edges(truth: torch.Tensor, width: int) -> torch.Tensor:
    """The pixels of ``(b, h, w)`` 0/1 ``truth`` within ``width`` pixels (a square
    neighbourhood) of a pixel of the other class: where dilating and eroding the change
    class disagree."""
    size = 2 * width + 1
    grown = F.max_pool2d(truth[:, None], size, stride=1, padding=width)
    shrunk = -F.max_pool2d(-truth[:, None], size, stride=1, padding=width)
    return (grown != shrunk)[:, 0]


def lovasz_hinge(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """The Lovász hinge of 1-D ``logits`` against 0/1 ``truth``: each pixel's hinge error,
    sorted from the worst, weighted by how much it adds to the change class's Jaccard
    loss (the gradient of its Lovász extension), summed."""
    signs = 2 * truth - 1
    errors, order = torch.sort(1 - logits * signs, descending=True)
    truth = truth[order]
    positives = truth.sum()
    intersection = positives - truth.cumsum(0)
    union = positives + (1 - truth).cumsum(0)
    jaccard = 1 - intersection / union
    weights = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return torch.dot(F.relu(errors), weights)


class BatchBalancedContrastiveLoss(nn.Module):
    """STANet's loss on feature distances: pull unchanged pixels together, push changed
    ones at least ``margin`` apart, each class averaged on its own so both weigh the same.

    L = 1/2 mean_unchanged(d^2) + 1/2 mean_changed(max(0, margin - d)^2)

    Example:
        >>> loss = BatchBalancedContrastiveLoss(margin=2.0)
        >>> loss(torch.zeros(1, 1, 4, 4), torch.ones(1, 4, 4, dtype=torch.long)).item()
        2.0
    """

    def __init__(self, *, margin: float = 2.0) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, distance: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        distance = distance[:, 0].float()
        changed, unchanged = target == 1, target == 0
        loss = distance.sum() * 0.0
        if unchanged.any():
            loss = loss + 0.5 * (distance[unchanged] ** 2).mean()
        if changed.any():
            loss = loss + 0.5 * (F.relu(self.margin - distance[changed]) ** 2).mean()
        return loss
