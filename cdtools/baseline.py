"""The naive baseline every trained model must beat: a tuned threshold on |after - before|.

Each date is z-scored per band (so a global brightness change does not count), the
absolute differences are summed over bands, and the threshold is swept over quantiles
of that score; the best F1 against the truth is kept. The threshold is chosen with the
truth, so this is the naive method at its very best.
"""

from __future__ import annotations

import numpy as np

QUANTILES = 200


def difference_score(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Sum over bands of |z(after) - z(before)| for ``(bands, h, w)`` images, each date
    z-scored per band."""
    return np.abs(zscore(after) - zscore(before)).sum(axis=0)


def zscore(image: np.ndarray) -> np.ndarray:
    """A ``(bands, h, w)`` image with mean 0 and std 1 per band, float64."""
    image = image.astype(np.float64)
    mean = image.mean(axis=(1, 2), keepdims=True)
    std = image.std(axis=(1, 2), keepdims=True) + 1e-9
    return (image - mean) / std


def best_threshold(score: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The best F1 over thresholds at quantiles of ``score``; pixels with truth 255 are left out.

    Example:
        >>> truth = np.array([0, 0, 1, 1])
        >>> best_threshold(np.array([0.1, 0.2, 0.8, 0.9]), truth)["f1"]
        1.0
    """
    keep = truth.ravel() != 255
    score, truth = score.ravel()[keep], truth.ravel()[keep].astype(bool)
    thresholds = np.unique(np.quantile(score, np.linspace(0, 1, QUANTILES + 1)[1:-1]))
    sorted_score = np.sort(score)
    sorted_truth = truth[np.argsort(score, kind="stable")]
    # Pixels above each threshold, and the changed ones among them, from sorted cumulative sums.
    above = len(score) - np.searchsorted(sorted_score, thresholds, side="right")
    truth_above = np.concatenate([np.cumsum(sorted_truth[::-1])[::-1], [0]])
    true_positive = truth_above[len(score) - above]
    precision = true_positive / np.maximum(above, 1)
    recall = true_positive / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1))
    return {
        "f1": round(float(f1[best]), 4),
        "precision": round(float(precision[best]), 4),
        "recall": round(float(recall[best]), 4),
        "threshold": round(float(thresholds[best]), 4),
        "change_fraction": round(float(truth.mean()), 4),
    }


def naive_baseline(before: np.ndarray, after: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """F1, precision and recall of the best |after - before| threshold against ``truth``
    (0/1, 255 = ignore).

    Example:
        >>> naive_baseline(before, after, mask)["f1"]  # doctest: +SKIP
        0.345
    """
    return best_threshold(difference_score(before, after), truth)
