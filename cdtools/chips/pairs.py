"""ChipPairs: a dataset of chip pairs read from disk, normalised and, in training, augmented.

Items are ``((before, after), mask)``: before and after float tensors ``(c, h, w)``
normalised per band (with the chip's scene statistics under ``norm="scene"``), mask
``(h, w)`` int64 with 0 = no change, 1 = change, 255 = ignore.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from cdtools.chips.augment import augment_pair, center_crop
from cdtools.chips.coarsen import coarsen_image, coarsen_mask
from cdtools.chips.folder import Chip, read_chip, read_label_values
from cdtools.chips.labels import CODINGS, IGNORE
from cdtools.chips.stats import NormStats
from cdtools.errors import CdtoolsWarning, LabelError


class ChipPairs(torch.utils.data.Dataset):
    """A dataset of chips read from disk, normalised and (for training) augmented.

    ``augment`` is prepare_data's ``transforms`` ("default", "warp" or "geometry") for
    training chips, None for validation chips (centre-cropped to ``chip_size``);
    ``downsample``: each chip's k x k blocks averaged into one pixel before either
    (:mod:`cdtools.chips.coarsen`).
    """

    def __init__(
        self,
        chips: Sequence[Chip],
        *,
        stats: NormStats,
        bands: Sequence[int] | None,
        chip_size: int,
        augment: Literal["default", "warp", "geometry"] | None,
        seed: int,
        date_stats: Sequence[tuple[NormStats, NormStats]] | None = None,
        downsample: int = 1,
    ) -> None:
        self.chips = list(chips)
        self.stats = stats
        # Per chip, the statistics of its scene's before and after dates (norm="scene").
        self.date_stats = list(date_stats) if date_stats is not None else None
        self.bands = list(bands) if bands is not None else None
        self.chip_size = chip_size
        self.augment = augment
        self.seed = seed
        self.downsample = downsample
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
        if self.downsample > 1:
            before, after = (coarsen_image(x, self.downsample) for x in (before, after))
            mask = coarsen_mask(mask, self.downsample)
        if self.augment:
            self._calls += 1
            worker = torch.utils.data.get_worker_info()
            rng = np.random.default_rng((self.seed, i, self._calls, worker.id if worker else 0))
            before, after, mask = augment_pair(
                before, after, mask, self.chip_size, rng,
                warp=self.augment == "warp", jitter=self.augment != "geometry",
            )  # fmt: skip
        else:
            before, after, mask = center_crop(before, after, mask, self.chip_size)
        return (
            (
                torch.from_numpy(np.ascontiguousarray(before)),
                torch.from_numpy(np.ascontiguousarray(after)),
            ),
            torch.from_numpy(mask.astype(np.int64)),
        )
