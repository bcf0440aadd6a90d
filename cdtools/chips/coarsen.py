"""Coarser pixels: training and predicting at a fraction of the imagery's resolution.

``prepare_data(downsample=k)`` averages each k x k block of a chip's pixels into one, and
a model trained so carries ``downsample`` in its package: prediction averages the blocks
of each tile the same way and brings the change probability back to the tile's own grid.
On AirChange (1.5 m aerial images with hand-drawn outlines) training at half the
resolution was what lifted Szada/1 (``benchmarks/recipe_airchange.py``).

A coarse label pixel is change where at least half of the labelled pixels it covers are
change, no change where fewer are, and ignored (255) where none of them is labelled.
"""

from __future__ import annotations

import numpy as np

from cdtools.chips.labels import IGNORE
from cdtools.errors import ParameterError

FACTORS = (1, 2, 4)


def check_downsample(factor: int) -> int:
    """``factor`` if it is one of :data:`FACTORS`, else a ParameterError."""
    if factor not in FACTORS:
        raise ParameterError(
            f"downsample must be one of {FACTORS} (pixels averaged along each side), got "
            f"{factor!r}."
        )
    return factor


def coarsen_image(image: np.ndarray, factor: int) -> np.ndarray:
    """The mean of each ``factor`` x ``factor`` block of the last two axes (rows and
    columns past the last whole block are dropped)."""
    if factor == 1:
        return image
    h, w = image.shape[-2] // factor, image.shape[-1] // factor
    blocks = image[..., : h * factor, : w * factor].reshape(*image.shape[:-2], h, factor, w, factor)
    return blocks.mean(axis=(-3, -1), dtype=np.float32)


def coarsen_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """A 0/1/255 mask with one pixel per ``factor`` x ``factor`` block (see the module)."""
    if factor == 1:
        return mask
    change = coarsen_image((mask == 1).astype(np.float32), factor)
    labelled = coarsen_image((mask != IGNORE).astype(np.float32), factor)
    out = (2 * change >= labelled).astype(np.uint8)
    out[labelled == 0] = IGNORE
    return out
