"""Thresholds without truth: Otsu and Kittler-Illingworth on a change statistic's sample.

Both work on a histogram of the statistic over the fitting sample, up to its 99.9th
percentile (a few extreme pixels would otherwise squeeze everything into the first
bins). Otsu (1979) maximises the variance between the two classes; Kittler and
Illingworth (1986) minimise the error of a mixture of two Gaussians with their own
variances, which suits a small change class beside a large no-change one. scikit-image
has Otsu (used here) but not Kittler-Illingworth, which is written out below.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from cdtools.errors import ParameterError

Rule = Literal["otsu", "kittler_illingworth"]
BINS = 256
UPPER_QUANTILE = 0.999


def histogram(values: np.ndarray, bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """Counts and bin centres of ``values`` between their minimum and 99.9th percentile."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ParameterError("a threshold needs at least one finite value.")
    low, high = float(values.min()), float(np.quantile(values, UPPER_QUANTILE))
    if high <= low:
        high = float(values.max())
    if high <= low:
        return np.array([values.size], dtype=np.float64), np.array([low])
    counts, edges = np.histogram(np.clip(values, low, high), bins=bins, range=(low, high))
    return counts.astype(np.float64), (edges[:-1] + edges[1:]) / 2


def otsu(values: np.ndarray) -> float:
    """Otsu's threshold of ``values``: change is above it.

    Example:
        >>> values = np.r_[np.zeros(90), np.ones(10) * 5]
        >>> 0 < otsu(values) < 5
        True
    """
    from skimage.filters import threshold_otsu

    counts, centres = histogram(values)
    if counts.size == 1:
        return float(centres[0])
    return float(threshold_otsu(hist=(counts, centres)))


def kittler_illingworth(values: np.ndarray) -> float:
    """Kittler-Illingworth's minimum-error threshold of ``values``: change is above it.

    For each cut t between histogram bins, the two sides are fitted by Gaussians (weight
    P, variance s²) and the criterion J(t) = P1 ln s1² + P2 ln s2² - 2 (P1 ln P1 + P2 ln
    P2) is minimised (written by hand: none of the project's libraries has it).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> values = np.r_[rng.normal(0, 1, 9000), rng.normal(8, 2, 1000)]
        >>> 2 < kittler_illingworth(values) < 6
        True
    """
    counts, centres = histogram(values)
    if counts.size == 1:
        return float(centres[0])
    p = counts / counts.sum()
    w1 = np.cumsum(p)
    m1 = np.cumsum(p * centres)
    q1 = np.cumsum(p * centres**2)
    w2, m2, q2 = 1 - w1, m1[-1] - m1, q1[-1] - q1
    with np.errstate(divide="ignore", invalid="ignore"):
        mean1, mean2 = m1 / w1, m2 / w2
        var1, var2 = q1 / w1 - mean1**2, q2 / w2 - mean2**2
        criterion = w1 * np.log(var1) + w2 * np.log(var2) - 2 * (w1 * np.log(w1) + w2 * np.log(w2))
    floor = (centres[1] - centres[0]) ** 2 / 12  # a class narrower than one bin is no class
    usable = (w1 > 0) & (w2 > 0) & (var1 > floor) & (var2 > floor) & np.isfinite(criterion)
    if not usable.any():
        return otsu(values)
    best = int(np.argmin(np.where(usable, criterion, np.inf)))
    return float((centres[best] + centres[min(best + 1, centres.size - 1)]) / 2)


RULES = {"otsu": otsu, "kittler_illingworth": kittler_illingworth}
