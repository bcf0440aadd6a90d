"""What the accuracy benchmarks share: train an architecture, score whole scenes, time steps."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from fastai.callback.core import Callback

from cdtools.baseline import naive_baseline
from cdtools.chips.data import prepare_data
from cdtools.chips.labels import IGNORE
from cdtools.learn.detector import ChangeDetector
from cdtools.learn.metrics import confusion, scores

ARCHS = ("siamese_unet", "stanet", "bit")


def train(
    arch: str,
    chips: Sequence[Path],
    *,
    epochs: int,
    lr: float | None,
    chip_size: int,
    seed: int = 0,
    batch_size: int = 8,
    loss: Any = None,
    norm: str | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    transforms: Literal["default", "warp", "geometry"] | None = "default",
    change_repeats: int = 1,
    paste_change: float = 0.0,
    shift_dates: int = 0,
    wd: float | None = None,
    downsample: int = 1,
    **fit_options: Any,
) -> tuple[ChangeDetector, float]:
    """A detector trained from scratch on ``chips`` with its threshold tuned, and the seconds
    its training took (``lr=None``: the learning-rate finder's suggestion, found within
    that time; ``arch_kwargs``: options of the architecture, e.g. ``{"dropout": 0.0}``;
    ``transforms``: prepare_data's augmentation; ``change_repeats``: each training chip
    with change seen that many times an epoch)."""
    torch.manual_seed(seed)
    options = {} if norm is None else {"norm": norm}  # None: prepare_data's default
    dls = prepare_data(
        list(chips),
        chip_size=chip_size,
        batch_size=batch_size,
        seed=seed,
        transforms=transforms,
        downsample=downsample,
        **options,
    )
    if change_repeats > 1:
        oversample_change(dls, change_repeats)
    detector = ChangeDetector(dls, arch=arch, pretrained=False, loss=loss, **(arch_kwargs or {}))
    if paste_change:
        detector.learn.add_cb(PasteChange(paste_change, seed=seed))
    if shift_dates:
        detector.learn.add_cb(ShiftDates(shift_dates, seed=seed))
    if wd is not None:
        detector.learn.wd = wd
    start = time.perf_counter()
    with detector.learn.no_bar(), detector.learn.no_logging():
        if lr is None:
            lr = detector.lr_find(show=False)
        detector.fit(epochs, lr=lr, **({"checkpoint": False} | fit_options))
    seconds = time.perf_counter() - start
    detector.tune_threshold()
    return detector, seconds


def oversample_change(dls: Any, repeats: int) -> None:
    """Repeat each training chip that holds change ``repeats`` times in every epoch."""
    ds = dls.train_ds
    picked = [i for i in range(len(ds)) if (ds.raw(i)[2] == 1).any()]
    extra = [i for i in picked for _ in range(repeats - 1)]
    ds.chips += [ds.chips[i] for i in extra]
    if ds.date_stats is not None:
        ds.date_stats += [ds.date_stats[i] for i in extra]
    dls.train.n = len(ds)


class BatchEdit(Callback):
    """A change to each training batch, drawn from its own seeded generator: subclasses
    give :meth:`edit`, which returns new tensors (the batch's own stay as they are)."""

    def __init__(self, *, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def before_batch(self) -> None:
        if self.training:
            ((before, after),), (mask,) = self.learn.xb, self.learn.yb
            before, after, mask = self.edit(before, after, mask)
            self.learn.xb, self.learn.yb = ((before, after),), (mask,)

    def draw(self, high: int, n: int = 1) -> list[int]:
        return torch.randint(high, (n,), generator=self.generator).tolist()

    def chance(self, p: float) -> bool:
        return torch.rand(1, generator=self.generator).item() < p

    def edit(self, before: torch.Tensor, after: torch.Tensor, mask: torch.Tensor) -> tuple:
        raise NotImplementedError


class PasteChange(BatchEdit):
    """Copy-paste of change between the chips of a training batch.

    With chance ``p``, a chip gets the change pixels of another chip of the batch (both
    dates and the label, shifted by a random offset) pasted over its own: new change in a
    new place, its outline the same on both dates so that only the change itself differs.
    """

    def __init__(self, p: float, *, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.p = p

    def edit(self, before: torch.Tensor, after: torch.Tensor, mask: torch.Tensor) -> tuple:
        donors = (mask == 1).flatten(1).any(1).nonzero().flatten().tolist()
        if not donors:
            return before, after, mask
        source = before, after, mask
        before, after, mask = before.clone(), after.clone(), mask.clone()
        for i in range(len(mask)):
            j = donors[self.draw(len(donors))[0]]
            if j == i or not self.chance(self.p):
                continue
            shift = tuple(self.draw(mask.shape[-1], 2))
            moved = [t[j].roll(shift, dims=(-2, -1)) for t in source]
            change = moved[2] == 1
            before[i][:, change] = moved[0][:, change]
            after[i][:, change] = moved[1][:, change]
            mask[i][change] = 1
        return before, after, mask


class ShiftDates(BatchEdit):
    """Misregistration as augmentation: half the training chips of a batch get their after
    date moved by up to ``pixels`` pixels in each direction against the before date and
    the label (the pixels that wrap round the edge are ignored), so that edges which only
    move between dates are no change to learn."""

    def __init__(self, pixels: int, *, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.pixels = pixels

    def edit(self, before: torch.Tensor, after: torch.Tensor, mask: torch.Tensor) -> tuple:
        after, mask = after.clone(), mask.clone()
        for i in range(len(mask)):
            if not self.chance(0.5):
                continue
            dy, dx = (v - self.pixels for v in self.draw(2 * self.pixels + 1, 2))
            after[i] = after[i].roll((dy, dx), dims=(-2, -1))
            for offset, dim in ((dy, 0), (dx, 1)):
                if offset:
                    edge = slice(None, offset) if offset > 0 else slice(offset, None)
                    mask[i][(edge, slice(None)) if dim == 0 else (slice(None), edge)] = IGNORE
        return before, after, mask


def default_path(
    chips: Sequence[Path] | Path, *, chip_size: int, epochs: int, seed: int = 0
) -> tuple[ChangeDetector, float]:
    """cdtools' default path with nothing chosen (``ChangeDetector(dls)``, ``fit(epochs)``,
    ``tune_threshold``), from scratch, and the seconds ``fit`` took."""
    torch.manual_seed(seed)
    dls = prepare_data(chips, chip_size=chip_size, seed=seed)
    detector = ChangeDetector(dls, pretrained=False)
    start = time.perf_counter()
    with detector.learn.no_bar(), detector.learn.no_logging():
        detector.fit(epochs)
    seconds = time.perf_counter() - start
    detector.tune_threshold()
    return detector, seconds


def score(prob: np.ndarray, truth: np.ndarray, threshold: float) -> dict[str, Any]:
    """Change-class scores and the raw counts (for pooling) of one scene."""
    matrix = confusion(torch.from_numpy(prob), torch.from_numpy(truth.astype(np.int64)), threshold)
    change = scores(matrix)["Change"]
    return {k: round(change[k], 4) for k in ("precision", "recall", "f1")} | {
        "counts": matrix.tolist()
    }


def pooled(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Scores over all scenes' pixels together."""
    matrix = np.sum([r["counts"] for r in rows], axis=0)
    change = scores(matrix)["Change"]
    return {k: round(change[k], 4) for k in ("precision", "recall", "f1")}


def naive(before: np.ndarray, after: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    result = naive_baseline(before, after, truth)
    return {k: result[k] for k in ("precision", "recall", "f1")}


def throughput(
    arch: str,
    *,
    bands: int = 3,
    size: int = 256,
    batch: int = 8,
    steps: int = 3,
    precision: str = "fp32",
) -> float:
    """Training chips per second (forward, backward, optimiser step) at ``size`` px, ``batch``;
    ``precision="bf16"`` as ``fit`` trains on a CPU (autocast, channels-last)."""
    from cdtools.learn.losses import BCEDiceLoss
    from cdtools.models import ARCHITECTURES

    torch.manual_seed(0)
    model = ARCHITECTURES[arch](bands, pretrained=False)
    optimiser = torch.optim.AdamW(model.parameters(), 1e-3)
    pair = (torch.randn(batch, bands, size, size), torch.randn(batch, bands, size, size))
    if precision == "bf16":
        model = model.to(memory_format=torch.channels_last)
        pair = tuple(x.contiguous(memory_format=torch.channels_last) for x in pair)
    target = (torch.rand(batch, size, size) > 0.9).long()
    loss_fn = BCEDiceLoss()
    for step in range(steps + 1):  # the first step warms up
        if step == 1:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(pair)
        loss = loss_fn(out, target) if model.output == "logit" else out.float().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return round(steps * batch / (time.perf_counter() - start), 2)
