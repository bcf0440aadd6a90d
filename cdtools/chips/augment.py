"""Paired augmentation of chips: one geometry for before, after and mask; jitter per date.

Flips, 90-degree rotations and a random crop are drawn once per chip and applied
identically to both dates and the mask, so they stay aligned; so is the optional warp (a
rotation by any angle and a scale of 0.8-1.25, pixels brought in from outside the chip
ignored). Brightness, contrast and colour jitter is drawn per date, because illumination
that differs between dates is exactly the pseudo-change a model must learn to ignore
(it can be left out: ``jitter=False``).
Images are normalised ``(bands, h, w)`` float arrays; masks are ``(h, w)`` with 255 =
ignore.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cdtools.chips.labels import IGNORE

WARP_SCALES = (0.8, 1.25)  # the warp's zoom, drawn log-uniformly


def augment_pair(
    before: np.ndarray,
    after: np.ndarray,
    mask: np.ndarray,
    size: int,
    rng: np.random.Generator,
    *,
    warp: bool = False,
    jitter: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One draw of paired augmentation: same geometry for all three, jitter per date
    (``warp``: also a rotation by any angle and a scale, see :func:`warp_pair`;
    ``jitter=False``: the geometry only, values as they are)."""
    before, after, mask = _pad(before, after, mask, size)
    height, width = mask.shape
    row = int(rng.integers(0, height - size + 1))
    col = int(rng.integers(0, width - size + 1))
    crop = (slice(row, row + size), slice(col, col + size))
    before, after, mask = before[(slice(None), *crop)], after[(slice(None), *crop)], mask[crop]
    k = int(rng.integers(0, 4))
    flip_x, flip_y = rng.random() < 0.5, rng.random() < 0.5

    def geometry(a: np.ndarray) -> np.ndarray:
        a = np.rot90(a, k, axes=(-2, -1))
        if flip_x:
            a = a[..., ::-1]
        if flip_y:
            a = a[..., ::-1, :]
        return a

    before, after, mask = geometry(before), geometry(after), geometry(mask)
    if warp:
        before, after, mask = warp_pair(before, after, mask, rng)
    if not jitter:
        return before, after, mask
    return _jitter(before, rng), _jitter(after, rng), mask


def warp_pair(
    before: np.ndarray, after: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One rotation (any angle) and scale (:data:`WARP_SCALES`) about the chip's centre,
    the same for both dates (bilinear) and the mask (nearest). Pixels brought in from
    outside the chip are 0 in the images (the mean, once normalised) and ignored in the mask."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    zoom = np.exp(rng.uniform(*np.log(WARP_SCALES)))
    # affine_transform maps each output pixel to the input pixel it reads
    matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / zoom
    centre = (np.array(mask.shape) - 1) / 2
    offset = centre - matrix @ centre

    def apply(band: np.ndarray, order: int, fill: float) -> np.ndarray:
        return ndimage.affine_transform(band, matrix, offset=offset, order=order, cval=fill)

    return (
        np.stack([apply(band, 1, 0.0) for band in before]).astype(np.float32),
        np.stack([apply(band, 1, 0.0) for band in after]).astype(np.float32),
        apply(mask, 0, IGNORE),
    )


def _jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness and contrast for the whole chip, plus a small per-band colour shift."""
    contrast = 1.0 + rng.uniform(-0.2, 0.2)
    shift = rng.uniform(-0.2, 0.2) + rng.uniform(-0.05, 0.05, size=(image.shape[0], 1, 1))
    return (image * contrast + shift).astype(np.float32)


def center_crop(
    before: np.ndarray, after: np.ndarray, mask: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The centre ``size`` x ``size`` window (padded with ignore where the chip is smaller)."""
    before, after, mask = _pad(before, after, mask, size)
    row, col = (mask.shape[0] - size) // 2, (mask.shape[1] - size) // 2
    crop = (slice(row, row + size), slice(col, col + size))
    return before[(slice(None), *crop)], after[(slice(None), *crop)], mask[crop]


def _pad(
    before: np.ndarray, after: np.ndarray, mask: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pad_h, pad_w = max(size - mask.shape[0], 0), max(size - mask.shape[1], 0)
    if not (pad_h or pad_w):
        return before, after, mask
    image_pad = ((0, 0), (0, pad_h), (0, pad_w))
    return (
        np.pad(before, image_pad),
        np.pad(after, image_pad),
        np.pad(mask, ((0, pad_h), (0, pad_w)), constant_values=IGNORE),
    )
