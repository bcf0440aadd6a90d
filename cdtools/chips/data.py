"""prepare_data: fastai DataLoaders of chip pairs, ((before, after), mask).

Training chips are augmented by :mod:`cdtools.chips.augment` (the same geometry for both dates
and the mask, photometric jitter per date). Batches are ``((before, after), mask)``:
before and after are float tensors ``(b, c, h, w)`` normalised per band, mask is
``(b, h, w)`` int64 with 0 = no change, 1 = change, 255 = ignore.
"""

from __future__ import annotations

import logging
import os
import random
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from cdtools.chips.augment import augment_pair, center_crop
from cdtools.chips.folder import Chip, ChipFolder, find_chips, read_chip, read_label_values
from cdtools.chips.labels import CODINGS, IGNORE
from cdtools.chips.stats import (
    NormSource,
    NormStats,
    dataset_stats,
    imagenet_stats,
    scene_stats,
)
from cdtools.errors import CdtoolsWarning, ChipsFolderError, LabelError, ParameterError
from cdtools.io.raster import PathLike
from cdtools.learn.fastai_api import DataLoader, DataLoaders, default_device

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

CLASS_NAMES = ("NoChange", "Change")


class ChangeDataLoaders(DataLoaders):
    """fastai DataLoaders of ((before, after), mask) that also carry what a model needs.

    Attributes: ``stats`` (:class:`NormStats`), ``bands`` (indices selected, or None for
    all), ``n_bands``, ``chip_size``, ``class_names`` and ``sources`` (the chips folders).
    """

    stats: NormStats
    bands: tuple[int, ...] | None
    n_bands: int
    chip_size: int
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


class ChipPairs(torch.utils.data.Dataset):
    """A dataset of chips read from disk, normalised and (for training) augmented."""

    def __init__(
        self,
        chips: Sequence[Chip],
        *,
        stats: NormStats,
        bands: Sequence[int] | None,
        chip_size: int,
        augment: Literal["default", "warp"] | None,
        seed: int,
        date_stats: Sequence[tuple[NormStats, NormStats]] | None = None,
    ) -> None:
        self.chips = list(chips)
        self.stats = stats
        # Per chip, the statistics of its scene's before and after dates (norm="scene").
        self.date_stats = list(date_stats) if date_stats is not None else None
        self.bands = list(bands) if bands is not None else None
        self.chip_size = chip_size
        self.augment = augment
        self.seed = seed
        self._calls = 0

    def __len__(self) -> int:
        return len(self.chips)

    def check_labels(self, *, limit: int = 500) -> None:
        """Check that the chips hold labelled pixels and change to learn from.

        Reads up to ``limit`` chips (drawn with the dataset's seed). No labelled pixel at
        all is a :class:`LabelError`. Labelled pixels without a single change pixel are a
        :class:`LabelError` for dense labels, and a :class:`CdtoolsWarning` when the labels
        are sparse (pixels marked 255 = ignore lie among labelled ones, as with sample
        masks; the padding along chip edges does not count) or when only a sample of the
        chips was read: the split may be unlucky rather than wrong, but F1 of change
        cannot be learnt from it. Both messages give the pixel counts.

        Example:
            >>> dls.train_ds.check_labels()  # doctest: +SKIP
        """
        picked = np.random.default_rng(self.seed).permutation(len(self.chips))[:limit]
        labelled = change = gaps = 0
        for i in picked.tolist():
            chip = self.chips[i]
            mask = CODINGS[chip.coding][read_label_values(chip.label)]
            known = mask != IGNORE
            labelled += int(known.sum())
            change += int((mask == 1).sum())
            # Ignored pixels above and left of the last labelled row and column: unlabelled
            # pixels among the labels, not the padding along a chip's bottom and right edge.
            rows, cols = np.flatnonzero(known.any(axis=1)), np.flatnonzero(known.any(axis=0))
            if rows.size:
                gaps += int((~known[: rows[-1] + 1, : cols[-1] + 1]).sum())
        checked = f"{len(picked)} of {len(self)} training chips checked"
        if labelled == 0:
            raise LabelError(
                f"the {checked} have no labelled pixels (all 255 = ignore); export chips with "
                "change labels before training."
            )
        if change == 0:
            counts = f"{labelled:,} labelled pixels and 0 change pixels in the {checked}"
            if gaps:
                warnings.warn(
                    f"the training chips hold no change ({counts}; the labels are sparse): "
                    "F1 of change cannot be learnt from this split. Label more change, or "
                    "split again (another seed or val_split_pct) so that training gets some.",
                    CdtoolsWarning,
                    stacklevel=3,
                )
                return
            message = (
                f"the training chips hold no change ({counts}); a change detector cannot "
                "learn from that. Export chips whose labels include change "
                "(min_change_fraction > 0 keeps chips with change)."
            )
            if len(picked) < len(self):
                warnings.warn(message, CdtoolsWarning, stacklevel=3)
            else:
                raise LabelError(message)

    def raw(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Chip ``i`` as stored, bands selected: (before, after, mask 0/1/255)."""
        before, after, mask = read_chip(self.chips[i])
        if self.bands is not None:
            before, after = before[self.bands], after[self.bands]
        return before, after, mask

    def __getitem__(self, i: int) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        before, after, mask = self.raw(i)
        stats = self.date_stats[i] if self.date_stats is not None else (self.stats, self.stats)
        before, after = stats[0].normalise(before), stats[1].normalise(after)
        if self.augment:
            self._calls += 1
            worker = torch.utils.data.get_worker_info()
            rng = np.random.default_rng((self.seed, i, self._calls, worker.id if worker else 0))
            before, after, mask = augment_pair(
                before, after, mask, self.chip_size, rng, warp=self.augment == "warp"
            )
        else:
            before, after, mask = center_crop(before, after, mask, self.chip_size)
        return (
            (
                torch.from_numpy(np.ascontiguousarray(before)),
                torch.from_numpy(np.ascontiguousarray(after)),
            ),
            torch.from_numpy(mask.astype(np.int64)),
        )


def prepare_data(
    path: PathLike | Sequence[PathLike],
    *,
    chip_size: int = 256,
    batch_size: int = 8,
    val_split_pct: float = 0.1,
    transforms: Literal["default", "warp"] | None = "default",
    seed: int = 42,
    bands: Sequence[int] | None = None,
    norm: NormSource | NormStats = "scene",
    num_workers: int = 0,
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
            beat "default": benchmarks/recipe_airchange.py), None for none.
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
    if transforms not in ("default", "warp", None):
        raise ParameterError(f"transforms must be 'default', 'warp' or None, got {transforms!r}.")
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
    common = {"stats": stats, "bands": bands, "chip_size": chip_size, "seed": seed}
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
