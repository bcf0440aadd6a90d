"""Scores of the change class from a confusion matrix accumulated over a whole dataset.

Precision, recall, F1 and IoU are computed once from the summed counts of every batch,
not averaged over batches (which would weigh a batch with 3 change pixels like one with
30,000). Pixels labelled 255 are left out everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from cdtools.chips.labels import IGNORE
from cdtools.learn.fastai_api import Metric

SCORES = ("precision", "recall", "f1", "iou")


def confusion(prob: torch.Tensor, target: torch.Tensor, threshold: float) -> torch.Tensor:
    """2 x 2 counts ``[[tn, fp], [fn, tp]]`` of labelled pixels.

    ``prob`` is ``(b, 1, h, w)`` or ``(b, h, w)``; ``target`` is ``(b, h, w)``.
    """
    prob = prob.reshape(target.shape)
    valid = target != IGNORE
    pred = (prob > threshold)[valid].long()
    truth = (target[valid] == 1).long()
    return torch.bincount(truth * 2 + pred, minlength=4).reshape(2, 2).cpu()


def scores(matrix: torch.Tensor | np.ndarray) -> dict[str, dict[str, float]]:
    """Per class ("NoChange", "Change"): precision, recall, f1, iou and support."""
    m = np.asarray(matrix, dtype=np.float64)
    out = {}
    for name, k in (("NoChange", 0), ("Change", 1)):
        tp = m[k, k]
        fp = m[:, k].sum() - tp
        fn = m[k, :].sum() - tp
        out[name] = {
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "iou": _ratio(tp, tp + fp + fn),
            "support": float(m[k, :].sum()),
        }
    return out


def probability_histogram(prob: torch.Tensor, target: torch.Tensor, *, bins: int) -> np.ndarray:
    """``(2, bins)`` counts of labelled pixels by probability bin: row 0 no change, row 1 change."""
    valid = target != IGNORE
    index = (prob.reshape(target.shape)[valid].clamp(0, 1 - 1e-7) * bins).long().cpu().numpy()
    truth = (target[valid] == 1).long().cpu().numpy()
    counts = np.zeros((2, bins), dtype=np.int64)
    np.add.at(counts, (truth, index), 1)
    return counts


def f1_curve(counts: np.ndarray) -> np.ndarray:
    """F1 of change at each bin's lower edge as threshold, from ``(..., 2, bins)`` counts of
    :func:`probability_histogram` (leading axes kept: one curve per set of counts)."""
    above = counts[..., ::-1].cumsum(axis=-1)[..., ::-1]  # pixels with prob >= each edge
    tp, fp = above[..., 1, :], above[..., 0, :]
    fn = counts[..., 1, :].sum(axis=-1, keepdims=True) - tp
    return 2 * tp / np.maximum(2 * tp + fp + fn, 1)


def best_f1_threshold(counts: np.ndarray) -> float:
    """The bin edge whose threshold gives the best change F1, from :func:`probability_histogram`."""
    return round(int(np.argmax(f1_curve(counts))) / counts.shape[-1], 4)


def supported_f1_threshold(
    chip_counts: np.ndarray, *, prior: float = 0.5, resamples: int = 200, seed: int = 0
) -> float:
    """The threshold nearest ``prior`` whose F1 the validation chips cannot tell from the best.

    ``chip_counts`` holds one :func:`probability_histogram` per chip, ``(chips, 2, bins)``.
    A threshold is kept when its F1 shortfall against the F1-best threshold is within one
    standard deviation of that shortfall over ``resamples`` bootstrap draws of the chips
    (the same draw for both thresholds). On a flat F1 curve, or with few chips holding
    change, the argmax moves with the chips drawn for validation; the threshold then stays
    near ``prior`` (a model's own decision point, 0.5 for probabilities) and moves away
    only as far as the chips support.
    """
    chips, _, bins = chip_counts.shape
    curve = f1_curve(chip_counts.sum(axis=0))
    best = int(np.argmax(curve))
    draws = np.random.default_rng(seed).multinomial(chips, np.full(chips, 1 / chips), resamples)
    boot = f1_curve((draws @ chip_counts.reshape(chips, -1)).reshape(resamples, 2, bins))
    spread = (boot[:, [best]] - boot).std(axis=0)
    kept = np.flatnonzero(curve[best] - curve <= spread)  # holds best (shortfall 0)
    edges = kept / bins
    return round(float(edges[np.argmin(np.abs(edges - prior))]), 4)


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else 0.0


class ChangeScore(Metric):
    """A fastai metric: one score of the change class over the whole validation set.

    ``to_prob`` turns the model's output into change probabilities and ``threshold``
    gives the current decision threshold (read at every batch, so tuning applies at once).
    """

    def __init__(
        self,
        score: str,
        to_prob: Callable[[torch.Tensor], torch.Tensor],
        threshold: Callable[[], float],
    ) -> None:
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        self.score, self.to_prob, self.threshold = score, to_prob, threshold
        self.reset()

    def reset(self) -> None:
        self.matrix = torch.zeros(2, 2, dtype=torch.long)

    def accumulate(self, learn: Any) -> None:
        prob = self.to_prob(learn.pred.detach())
        self.matrix += confusion(prob, learn.yb[0], self.threshold())

    @property
    def value(self) -> float:
        return scores(self.matrix)["Change"][self.score]

    @property
    def name(self) -> str:
        return self.score
