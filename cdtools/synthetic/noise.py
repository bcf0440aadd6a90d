"""Smooth random fields that give the same value at a pixel whichever window asks for it.

A scene is rendered block by block, so its texture noise must not depend on the block:
random values are drawn once on a coarse lattice covering the whole scene, and any
window is blended from them with uniform cubic B-spline weights.

Written by hand rather than with ``scipy.ndimage.map_coordinates``: the sample points of
a window form a regular grid, so the blend is two small matrix products (weights along
rows, lattice, weights along columns), about twenty times faster than per-pixel splines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MARGIN = 96
"""Pixels beyond the scene edge that every field still covers (render halos reach out)."""


def _bspline_weights(fraction: np.ndarray) -> np.ndarray:
    """Uniform cubic B-spline weights of the four nodes around each fractional position."""
    f = fraction
    return np.stack(
        [
            (1 - f) ** 3 / 6,
            (3 * f**3 - 6 * f**2 + 4) / 6,
            (-3 * f**3 + 3 * f**2 + 3 * f + 1) / 6,
            f**3 / 6,
        ],
        axis=1,
    )


# The blend of unit-variance lattice values has less than unit variance; this restores it
# (averaged over positions between nodes; the product of the two axes' factors).
_AXIS_VARIANCE = float(np.mean(np.sum(_bspline_weights(np.linspace(0, 1, 1001)) ** 2, axis=1)))
_NORMALISE = 1.0 / _AXIS_VARIANCE


class LatticeNoise:
    """Value noise with features about ``cell`` pixels across, zero mean and unit spread.

    Example:
        >>> noise = LatticeNoise(256, 16, np.random.default_rng(0))
        >>> noise.sample(0, 0, 64, 64).shape
        (64, 64)
    """

    def __init__(self, size: int, cell: float, rng: np.random.Generator) -> None:
        self.cell = float(cell)
        self._offset = int(np.ceil(MARGIN / cell)) + 2
        nodes = int(np.ceil((size + MARGIN) / cell)) + self._offset + 3
        self._values = rng.standard_normal((nodes, nodes), dtype=np.float32)

    def _axis_weights(self, start: int, count: int, step: int) -> tuple[np.ndarray, int]:
        position = (start + step * np.arange(count) + 0.5) / self.cell + self._offset
        node = np.floor(position).astype(np.int64)
        first = int(node.min()) - 1
        weights = np.zeros((count, int(node.max()) - first + 3), dtype=np.float32)
        rows = np.arange(count)[:, None]
        columns = node[:, None] - 1 - first + np.arange(4)[None, :]
        weights[rows, columns] = _bspline_weights(position - node)
        return weights, first

    def sample(self, row: int, col: int, height: int, width: int, *, step: int = 1) -> np.ndarray:
        """The field on a window of the scene, every ``step``-th pixel (float32)."""
        wy, y0 = self._axis_weights(row, height, step)
        wx, x0 = self._axis_weights(col, width, step)
        lattice = self._values[y0 : y0 + wy.shape[1], x0 : x0 + wx.shape[1]]
        return (wy @ lattice @ wx.T) * np.float32(_NORMALISE)


@dataclass(frozen=True)
class NoiseBank:
    """The scene-wide fields the renderer builds textures from, by feature size.

    ``regional`` varies over hundreds of metres (moisture, soil), ``field`` within a
    field, ``patch`` over a few metres (shrubs, tree clusters), ``crown`` over one tree
    crown. ``seasonal`` holds one extra regional field per date, for change that is
    not change (irrigation, grazing, drying), and ``haze`` one patchy haze field per date.
    """

    regional: LatticeNoise
    field: LatticeNoise
    patch: LatticeNoise
    crown: LatticeNoise
    seasonal: tuple[LatticeNoise, LatticeNoise]
    haze: tuple[LatticeNoise, LatticeNoise]

    @classmethod
    def draw(cls, size: int, rng: np.random.Generator) -> NoiseBank:
        """Draw every field of a scene of ``size`` pixels from ``rng``."""
        return cls(
            regional=LatticeNoise(size, 220, rng),
            field=LatticeNoise(size, 56, rng),
            patch=LatticeNoise(size, 18, rng),
            crown=LatticeNoise(size, 6, rng),
            seasonal=(LatticeNoise(size, 150, rng), LatticeNoise(size, 150, rng)),
            haze=(LatticeNoise(size, 320, rng), LatticeNoise(size, 320, rng)),
        )
