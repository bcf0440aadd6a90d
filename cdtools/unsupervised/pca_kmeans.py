"""PCA-k-means change detection (Celik 2009).

The difference image is the CVA magnitude of the standardised dates (Celik's absolute
difference of grey levels, for any number of bands). Non-overlapping h x h blocks of it
give an eigenvector basis (PCA), every pixel's h x h neighbourhood projected on the
leading eigenvectors is its feature vector, and k-means splits the feature vectors into
two clusters; the cluster whose blocks differ more is change. Basis, centres and the
standardisation are fitted on a sample of blocks; the projections are filters applied
chunk by chunk. The statistic is the ratio of a pixel's distance to the no-change centre
to its distance to the change centre: above 1, the pixel is nearer the change centre.
Written from the paper; k-means is scikit-learn's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cdtools.unsupervised.cva import Standardiser

BLOCK = 5
VARIANCE = 0.9  # share of the blocks' variance the kept eigenvectors explain


@dataclass(frozen=True)
class PcaKmeans:
    """A fitted PCA-k-means: basis, mean block, cluster centres and the standardisation.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> sample = rng.normal(0, 1, (400, 2, 3, 5, 5))
        >>> model = PcaKmeans.fit(sample, seed=0)
        >>> model.basis.shape[0]
        25
    """

    scale: Standardiser
    basis: np.ndarray  # (h*h, components): eigenvectors in columns
    centre: np.ndarray  # (h*h,): mean block
    no_change: np.ndarray  # (components,): k-means centre of no change
    change: np.ndarray  # (components,): k-means centre of change
    fill: float  # difference assumed where a neighbour has no data: the sample's median
    block: int = BLOCK
    threshold_power: float = 1.0
    name: str = "pca_kmeans"
    description: str = (
        "|f - no-change centre| / |f - change centre| for f the PCA features of the "
        "pixel's block of the difference image"
    )

    @property
    def halo(self) -> int:
        return self.block // 2

    @classmethod
    def fit(cls, sample: np.ndarray, *, seed: int = 0, variance: float = VARIANCE) -> PcaKmeans:
        """Fit on a ``(n, 2, band, h, h)`` sample of valid, non-overlapping blocks."""
        from sklearn.cluster import KMeans

        block = sample.shape[-1]
        scale = Standardiser.fit(sample)
        diff = _differences(scale, sample)
        centre = diff.mean(axis=0)
        values, vectors = np.linalg.eigh(np.cov(diff - centre, rowvar=False))
        values, vectors = values[::-1], vectors[:, ::-1]
        explained = np.cumsum(values) / max(values.sum(), 1e-30)
        kept = int(np.searchsorted(explained, variance) + 1)
        basis = vectors[:, : min(kept, block * block)]
        features = (diff - centre) @ basis
        kmeans = KMeans(n_clusters=2, n_init=4, random_state=seed).fit(features)
        means = [
            diff[kmeans.labels_ == k].mean() if (kmeans.labels_ == k).any() else 0 for k in (0, 1)
        ]
        change = int(np.argmax(means))
        centres = kmeans.cluster_centers_
        fill = float(np.median(diff))
        return cls(scale, basis, centre, centres[1 - change], centres[change], fill, block)

    def sample_statistic(self, sample: np.ndarray) -> np.ndarray:
        """The statistic of the centre pixel of each ``(n, 2, band, h, h)`` sampled block."""
        features = (_differences(self.scale, sample) - self.centre) @ self.basis
        near = np.linalg.norm(features - self.no_change, axis=1)
        return near / np.maximum(np.linalg.norm(features - self.change, axis=1), 1e-12)

    def statistic(self, block: np.ndarray) -> np.ndarray:
        """Distance ratio of a ``(2, band, y, x)`` block with a halo of ``block // 2``
        pixels on every side; float32 ``(y - 2 halo, x - 2 halo)``."""
        return self.difference_statistic(self.difference(block))

    def difference(self, block: np.ndarray) -> np.ndarray:
        """The difference image of a ``(2, band, y, x)`` block: float32 ``(y, x)``, NaN
        where a date has no data. The statistic needs its neighbours only, so a scene's
        halo is taken on this one band, not on both dates' bands."""
        return self.scale.magnitude(block)

    def difference_statistic(self, diff: np.ndarray) -> np.ndarray:
        """Distance ratio of a difference image ``(y, x)`` with a halo of ``block // 2``
        pixels on every side; float32 ``(y - 2 halo, x - 2 halo)``."""
        from scipy.ndimage import correlate

        diff = np.where(np.isfinite(diff), diff, np.float32(self.fill))
        h, size = self.halo, self.block
        inner = (slice(h, diff.shape[0] - h), slice(h, diff.shape[1] - h))
        offset = (self.centre @ self.basis).astype(np.float32)
        near = np.zeros(diff[inner].shape, dtype=np.float32)
        far = np.zeros_like(near)
        for k in range(self.basis.shape[1]):
            kernel = self.basis[:, k].reshape(size, size).astype(np.float32)
            feature = correlate(diff, kernel, mode="nearest")[inner] - offset[k]
            near += np.square(feature - np.float32(self.no_change[k]))
            far += np.square(feature - np.float32(self.change[k]))
        return np.sqrt(near) / np.maximum(np.sqrt(far), np.float32(1e-12))

    def attrs(self) -> dict[str, Any]:
        return {"block": self.block, "components": int(self.basis.shape[1])}


def _differences(scale: Standardiser, sample: np.ndarray) -> np.ndarray:
    """The difference image of each ``(n, 2, band, h, h)`` block, as ``(n, h*h)`` float64."""
    z = scale.apply(np.moveaxis(sample, 0, 2))  # (2, band, n, h, h)
    return np.sqrt(np.square(z[1] - z[0]).sum(axis=0)).reshape(len(sample), -1).astype(np.float64)
