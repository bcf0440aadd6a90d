"""Normalisation statistics: per-band mean and std, and how they are estimated.

:class:`NormStats` normalises a ``(bands, h, w)`` image. Its statistics come from a
sample of training chips (``norm="dataset"``), from ImageNet (``norm="imagenet"``, 3 uint8
bands), or from each date of each scene itself (``norm="scene"``, the default: the
training chips' summary is stored, and every scene is normalised with its own).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from cdtools.chips.folder import Chip, read_chip
from cdtools.errors import ParameterError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STATS_SAMPLE = 256  # training chips read to estimate the normalisation statistics
SCENE_STATS_PIXELS = 1_000_000  # pixels per date read to estimate a scene's statistics
NormSource = Literal["scene", "dataset", "imagenet"]


@dataclass(frozen=True)
class NormStats:
    """Per-band mean and standard deviation, in the units stored in the chip files.

    ``source="scene"`` marks statistics that are only a summary of the training chips:
    each date of each scene is normalised with its own statistics instead
    (:meth:`for_image`), in training (per chips folder) and in prediction (per image).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: NormSource = "dataset"

    @property
    def per_scene(self) -> bool:
        """Whether each date of each scene is normalised with its own statistics."""
        return self.source == "scene"

    def for_image(self, image: Any, valid: np.ndarray | None = None) -> NormStats:
        """The statistics to normalise this ``(bands, h, w)`` date with: these, or for
        per-scene statistics the image's own, over its ``valid`` pixels that are not NaN
        (at most ``SCENE_STATS_PIXELS`` of them on a regular grid; a dask array is read)."""
        if not self.per_scene:
            return self
        step = max(1, math.ceil(math.sqrt(image.shape[-2] * image.shape[-1] / SCENE_STATS_PIXELS)))
        sample = np.asarray(image[:, ::step, ::step], dtype=np.float64)
        keep = np.isfinite(sample).all(axis=0)
        if valid is not None:
            keep &= valid[::step, ::step]
        pixels = sample[:, keep]
        if pixels.shape[1] == 0:
            return self  # no valid pixel: nothing is predicted there anyway
        return rounded_stats(pixels.mean(axis=1), pixels.std(axis=1), "scene")

    def normalise(self, image: np.ndarray) -> np.ndarray:
        """``(bands, h, w)`` raw values to float32 with mean 0 and std 1 per band."""
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        return (image.astype(np.float32, copy=False) - mean) / std

    def denormalise(self, image: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`normalise`."""
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        return image * std + mean


def scene_stats(
    splits: list[tuple[list[Chip], list[Chip]]], bands: Sequence[int] | None, seed: int
) -> tuple[list[tuple[NormStats, NormStats]], list[tuple[NormStats, NormStats]]]:
    """For every training and validation chip, the before and after statistics of its
    chips folder (one scene), over all of that folder's chips."""
    train: list[tuple[NormStats, NormStats]] = []
    valid: list[tuple[NormStats, NormStats]] = []
    for folder_train, folder_valid in splits:
        chips = folder_train + folder_valid
        dates = (
            dataset_stats(chips, bands, seed, dates=(0,), source="scene"),
            dataset_stats(chips, bands, seed, dates=(1,), source="scene"),
        )
        train += [dates] * len(folder_train)
        valid += [dates] * len(folder_valid)
    return train, valid


def imagenet_stats(chip: Chip, bands: Sequence[int] | None) -> NormStats:
    before, _, _ = read_chip(chip)
    n = len(bands) if bands is not None else before.shape[0]
    if n != 3 or before.dtype != np.uint8:
        raise ParameterError(
            f"norm='imagenet' needs 3 uint8 bands, these chips have {n} of {before.dtype}; "
            "use norm='dataset'."
        )
    return NormStats(
        tuple(255 * m for m in IMAGENET_MEAN), tuple(255 * s for s in IMAGENET_STD), "imagenet"
    )


def dataset_stats(
    chips: list[Chip],
    bands: Sequence[int] | None,
    seed: int,
    dates: tuple[int, ...] = (0, 1),
    source: NormSource = "dataset",
) -> NormStats:
    """Per-band mean and std over ``dates`` (0 before, 1 after) of up to STATS_SAMPLE chips."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(chips), size=min(len(chips), STATS_SAMPLE), replace=False)
    total = total_sq = None
    count = 0
    for i in sorted(picked.tolist()):
        images = read_chip(chips[i])[:2]
        for image in (images[d] for d in dates):
            image = image[list(bands)] if bands is not None else image
            pixels = image.reshape(image.shape[0], -1).astype(np.float64)
            total = pixels.sum(1) if total is None else total + pixels.sum(1)
            sq = (pixels**2).sum(1)
            total_sq = sq if total_sq is None else total_sq + sq
            count += pixels.shape[1]
    mean = total / count
    return rounded_stats(mean, np.sqrt(np.maximum(total_sq / count - mean**2, 0.0)), source)


def rounded_stats(mean: np.ndarray, std: np.ndarray, source: NormSource = "dataset") -> NormStats:
    std = np.where(std < 1e-6, 1.0, std)
    return NormStats(
        tuple(round(float(m), 4) for m in mean), tuple(round(float(s), 4) for s in std), source
    )
