"""Change vector analysis (CVA) on dates standardised band by band.

Each date's bands are standardised with that date's own mean and standard deviation
(fitted on the sample), so a gain or offset of a whole band between the dates does not
count as change; the statistic is the length of the difference vector,
``|z(after) - z(before)|`` over the bands (Malila 1980).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

EPS = 1e-12


@dataclass(frozen=True)
class Standardiser:
    """Per-date, per-band mean and standard deviation, each ``(2, band)``.

    Example:
        >>> sample = np.random.default_rng(0).normal(5, 2, (1000, 2, 3, 1, 1))
        >>> z = Standardiser.fit(sample).apply(np.full((2, 3, 4, 4), 5.0))
        >>> z.shape, bool(np.abs(z).max() < 0.2)
        ((2, 3, 4, 4), True)
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, sample: np.ndarray) -> Standardiser:
        """From a ``(n, 2, band, ...)`` sample (window pixels all count)."""
        values = np.moveaxis(sample, 0, 2).reshape(2, sample.shape[2], -1)
        mean, std = values.mean(axis=2), values.std(axis=2)
        return cls(mean, np.where(std > EPS * (1 + np.abs(mean)), std, 1.0))

    def apply(self, block: np.ndarray) -> np.ndarray:
        """``(2, band, ...)`` values standardised, float32."""
        shape = (2, self.mean.shape[1]) + (1,) * (block.ndim - 2)
        mean = self.mean.reshape(shape).astype(np.float32)
        scale = (1 / self.std).reshape(shape).astype(np.float32)
        return (block.astype(np.float32) - mean) * scale

    def magnitude(self, block: np.ndarray) -> np.ndarray:
        """``|z(after) - z(before)|`` over the bands of a ``(2, band, ...)`` block, float32;
        band by band, so that a chunk's temporaries stay one band's size."""
        total = np.zeros(block.shape[2:], dtype=np.float32)
        for band in range(block.shape[1]):
            before, after = (
                (block[date, band].astype(np.float32) - np.float32(self.mean[date, band]))
                * np.float32(1 / self.std[date, band])
                for date in (0, 1)
            )
            after -= before
            total += np.square(after, out=after)
        return np.sqrt(total, out=total)


@dataclass(frozen=True)
class Cva:
    """A fitted change vector analysis: its statistic is the standardised change magnitude.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> sample = rng.normal(0, 1, (500, 2, 3, 1, 1))
        >>> cva = Cva.fit(sample)
        >>> block = sample[:4, :, :, 0, 0].transpose(1, 2, 0)[..., None]  # (2, band, 4, 1)
        >>> cva.statistic(block).shape
        (4, 1)
    """

    scale: Standardiser
    halo: int = 0
    threshold_power: float = 1.0
    name: str = "cva"
    description: str = "|z(after) - z(before)|: length of the change vector of standardised bands"

    @classmethod
    def fit(cls, sample: np.ndarray) -> Cva:
        """Fit on a ``(n, 2, band, 1, 1)`` sample of valid pixels."""
        return cls(Standardiser.fit(sample))

    def statistic(self, block: np.ndarray) -> np.ndarray:
        """Change magnitude of a ``(2, band, y, x)`` block, float32 ``(y, x)``."""
        return self.scale.magnitude(block)

    def attrs(self) -> dict[str, Any]:
        return {}
