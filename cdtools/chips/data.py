"""prepare_data: fastai DataLoaders of chip pairs, ((before, after), mask).

The chips are split, their normalisation statistics computed, and each split read by a
:class:`~cdtools.chips.pairs.ChipPairs` (training chips augmented by
:mod:`cdtools.chips.augment`: the same geometry for both dates and the mask, photometric
jitter per date). Batches are ``((before, after), mask)``:
before and after are float tensors ``(b, c, h, w)`` normalised per band, mask is
``(b, h, w)`` int64 with 0 = no change, 1 = change, 255 = ignore.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cdtools.chips.coarsen import check_downsample
from cdtools.chips.folder import Chip, ChipFolder, find_chips, read_chip
from cdtools.chips.pairs import ChipPairs
from cdtools.chips.stats import (
    NormSource,
    NormStats,
    dataset_stats,
    imagenet_stats,
    scene_stats,
)
from cdtools.errors import ChipsFolderError, ParameterError
from cdtools.io.raster import PathLike
from cdtools.learn.fastai_api import DataLoader, DataLoaders, default_device

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

CLASS_NAMES = ("NoChange", "Change")


class ChangeDataLoaders(DataLoaders):
    """fastai DataLoaders of ((before, after), mask) that also carry what a model needs.

    Attributes: ``stats`` (:class:`NormStats`), ``bands`` (indices selected, or None for
    all), ``n_bands``, ``chip_size``, ``downsample``, ``class_names`` and ``sources`` (the
    chips folders).
    """

    stats: NormStats
    bands: tuple[int, ...] | None
    n_bands: int
    chip_size: int
    downsample: int = 1
    class_names: tuple[str, ...]
    sources: tuple[Path, ...]

    def show_batch(self, rows: int = 4, *, split: Literal["train", "valid"] = "train") -> Figure:
        """Draw ``rows`` chips as before | after | mask (change overlaid in colour).

        Returns the matplotlib figure.
        """
        loader = self.train if split == "train" else self.valid
        return self.draw_batch(loader.one_batch(), rows=rows)

    def draw_batch(self, batch: Any, *, rows: int = 4) -> Figure:
        """Draw the first ``rows`` chips of a ``((before, after), mask)`` batch as
        :meth:`show_batch` does (:class:`cdtools.widgets.BatchViewer` pages through them).

        Returns the matplotlib figure.
        """
        from cdtools.plots import show_pairs

        (before, after), mask = batch
        rows = min(rows, len(mask))
        return show_pairs(
            [self.stats.denormalise(t.cpu().numpy()) for t in before[:rows]],
            [self.stats.denormalise(t.cpu().numpy()) for t in after[:rows]],
            [m.cpu().numpy() for m in mask[:rows]],
        )


def prepare_data(
    path: PathLike | Sequence[PathLike],
    *,
    chip_size: int = 256,
    batch_size: int = 8,
    val_split_pct: float = 0.1,
    transforms: Literal["default", "warp", "geometry"] | None = "default",
    seed: int = 42,
    bands: Sequence[int] | None = None,
    norm: NormSource | NormStats = "scene",
    num_workers: int = 0,
    downsample: int = 1,
) -> ChangeDataLoaders:
    """Make fastai DataLoaders of ((before, after), mask) from a folder of chips.

    Args:
        path: a chips folder (cdtools/arcgis.learn export, or LEVIR-CD layout), or a
            list of them (for example one per scene), each split on its own.
        chip_size: size the chips are cropped to (randomly in training, centred in
            validation); smaller chips are padded with ignored pixels.
        batch_size: chips per batch.
        val_split_pct: share of chips held out for validation, drawn with ``seed``
            (LEVIR-CD's train/ and val/ folders are used as they are instead).
        transforms: "default" for paired augmentation in training (flips, quarter turns,
            a random crop, per-date brightness and colour jitter), "warp" for the same
            plus a rotation by any angle and a scale of 0.8-1.25 (on AirChange it did not
            beat "default": benchmarks/recipe_airchange.py), "geometry" for the flips,
            turns and crop without the jitter (not better than "default" on either
            real set), None for none.
        seed: seed of the split, the augmentation and the shuffling.
        bands: 0-based indices of the bands to use (all when None).
        norm: "scene" (each date of each chips folder with its own per-band mean and
            standard deviation, and in prediction each date of each scene: light and
            sensors that differ between scenes and dates matter less; on both real
            sets of benchmarks/accuracy_real.py every architecture scored higher with
            it), "dataset" (the training chips' statistics for every image),
            "imagenet" (RGB uint8 only), or a :class:`NormStats` (for example a trained
            model's).
        num_workers: background processes reading chips (0 reads in the main process).
        downsample: train at a coarser resolution: each chip's ``downsample`` x
            ``downsample`` blocks of pixels averaged into one (1, 2 or 4), ``chip_size``
            counted in the coarse pixels; a model trained so predicts at the same
            coarseness and returns maps on the input's grid. On AirChange (1.5 m), 2
            with ``dropout=0``, ``BCEDiceLoss(tversky_beta=0.9)`` and 36 epochs lifted
            Szada/1 from 0.450 to 0.514 and pooled F1 from 0.705 to 0.730 over four
            seeds (benchmarks/recipe_airchange.py); the default is 1.

    Returns:
        :class:`ChangeDataLoaders` with ``.train``, ``.valid``, ``.stats`` and ``.show_batch()``.

    Example:
        >>> dls = prepare_data("chips", batch_size=4)  # doctest: +SKIP
        >>> (before, after), mask = dls.one_batch()
    """
    if chip_size < 8:
        raise ParameterError(f"chip_size must be at least 8 pixels, got {chip_size}.")
    if batch_size < 1:
        raise ParameterError(f"batch_size must be at least 1, got {batch_size}.")
    if not 0.0 <= val_split_pct < 1.0:
        raise ParameterError(f"val_split_pct must be in [0, 1), got {val_split_pct}.")
    check_downsample(downsample)
    if transforms not in ("default", "warp", "geometry", None):
        raise ParameterError(
            f"transforms must be 'default', 'warp', 'geometry' or None, got {transforms!r}."
        )
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths:
        raise ParameterError("prepare_data needs at least one chips folder.")
    if not (isinstance(norm, NormStats) or norm in ("dataset", "scene", "imagenet")):
        raise ParameterError(
            f"norm must be 'dataset', 'scene', 'imagenet' or NormStats, got {norm!r}."
        )
    folders = [find_chips(p) for p in paths]
    splits = [_split(folder, val_split_pct, seed) for folder in folders]
    train = [chip for folder_train, _ in splits for chip in folder_train]
    valid = [chip for _, folder_valid in splits for chip in folder_valid]
    n_bands = _check_bands(train[0], bands)
    if isinstance(norm, NormStats):
        stats = norm
    elif norm == "imagenet":
        stats = imagenet_stats(train[0], bands)
    else:
        stats = dataset_stats(train, bands, seed, source=norm)
    if len(stats.mean) != n_bands:
        raise ParameterError(
            f"norm has statistics for {len(stats.mean)} bands, data has {n_bands}."
        )
    train_stats = valid_stats = None
    if stats.per_scene:
        train_stats, valid_stats = scene_stats(splits, bands, seed)
    common = {
        "stats": stats,
        "bands": bands,
        "chip_size": chip_size,
        "seed": seed,
        "downsample": downsample,
    }
    train_ds = ChipPairs(train, augment=transforms, date_stats=train_stats, **common)
    valid_ds = ChipPairs(valid, augment=None, date_stats=valid_stats, **common)
    loaders = [
        DataLoader(
            train_ds,
            bs=batch_size,
            shuffle=True,
            drop_last=len(train_ds) > batch_size,
            num_workers=num_workers,
        ),
        DataLoader(valid_ds, bs=batch_size, shuffle=False, num_workers=num_workers),
    ]
    loaders[0].rng = random.Random(seed)
    dls = ChangeDataLoaders(*loaders, path=folders[0].path, device=default_device())
    dls.stats, dls.chip_size, dls.n_bands = stats, chip_size, n_bands
    dls.downsample = downsample
    dls.bands = tuple(bands) if bands is not None else None
    dls.class_names, dls.sources = CLASS_NAMES, tuple(f.path for f in folders)
    log.info("prepare_data: %d training and %d validation chips", len(train_ds), len(valid_ds))
    return dls


def _split(folder: ChipFolder, val_pct: float, seed: int) -> tuple[list[Chip], list[Chip]]:
    if "train" in folder.splits:
        valid = folder.splits.get("valid") or folder.splits.get("test") or []
        if not valid:
            raise ChipsFolderError(f"{folder.path} has train/ but no val/ or test/ folder.")
        return folder.splits["train"], valid
    chips = folder.splits["all"]
    n_valid = max(1, round(len(chips) * val_pct)) if val_pct > 0 else 0
    if len(chips) - n_valid < 1:
        raise ChipsFolderError(
            f"{folder.path} holds {len(chips)} chips: too few to split off {val_pct:.0%} "
            "for validation; export more chips (a smaller stride) or lower val_split_pct."
        )
    order = np.random.default_rng(seed).permutation(len(chips))
    valid_ids = set(order[:n_valid].tolist())
    return (
        [c for i, c in enumerate(chips) if i not in valid_ids],
        [c for i, c in enumerate(chips) if i in valid_ids],
    )


def _check_bands(chip: Chip, bands: Sequence[int] | None) -> int:
    before, _, _ = read_chip(chip)
    if bands is None:
        return before.shape[0]
    bad = [b for b in bands if not 0 <= b < before.shape[0]]
    if bad or not bands:
        raise ParameterError(
            f"bands={list(bands)} does not fit chips with {before.shape[0]} bands; "
            f"use 0-based indices in 0..{before.shape[0] - 1}."
        )
    return len(bands)
