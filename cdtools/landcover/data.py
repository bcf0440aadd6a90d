"""prepare_landcover_data: fastai DataLoaders of land-cover patches, one folder per class.

The layout is EuroSAT's, ``<folder>/<Class>/<image>``: the manifest's ``eurosat-rgb``
(``cdtools.io.manifest.path("eurosat-rgb") / "2750"``) or the sample world's patches from
:func:`cdtools.make_landcover_patches`. Batches are ``(images, classes)``: float tensors
``(b, 3, size, size)`` normalised per band with the training images' statistics, and
int64 indices into ``dls.classes``. Training images are flipped and turned by multiples
of 90 degrees (fastai's ``DihedralItem``: top-down imagery has no "up").
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cdtools.chips.stats import NormStats
from cdtools.errors import CdtoolsError, ParameterError
from cdtools.io.raster import PathLike
from cdtools.landcover.classes import EUROSAT_CLASSES, LANDCOVER_COLOURS
from cdtools.learn.fastai_api import DataLoaders

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
BANDS = ("red", "green", "blue")
#: Patch sets whose decoded images fit in this many bytes are read from disk once, then
#: kept in memory for every later epoch (the sample set: ~35 MB; EuroSAT: ~330 MB).
IN_MEMORY_BYTES = 512 * 2**20
STATS_SAMPLE = 500  # training images read to estimate the normalisation statistics


class PatchesFolderError(CdtoolsError):
    """A folder of land-cover patches is not in the one-folder-per-class layout."""


class LandCoverDataLoaders(DataLoaders):
    """fastai DataLoaders of (image, class) that also carry what a classifier needs.

    Attributes: ``classes`` (folder names, sorted), ``colours`` (a hex colour per class),
    ``bands`` (band names), ``size`` (pixels a side), ``stats`` (:class:`NormStats` in
    the images' 0-255 units) and ``path`` (the class folders' parent).
    """

    classes: tuple[str, ...]
    colours: tuple[str, ...]
    bands: tuple[str, ...]
    size: int
    stats: NormStats

    def show_batch(
        self, rows: int = 2, *, columns: int = 4, split: Literal["train", "valid"] = "train"
    ) -> Figure:
        """Draw ``rows`` x ``columns`` patches of a batch (augmented in training), titled
        with their class.

        Returns the matplotlib figure.
        """
        x, y = (self.train if split == "train" else self.valid).one_batch()
        n = min(rows * columns, len(y))
        images = self.stats.denormalise(x[:n].cpu().numpy())
        titles = [self.classes[int(c)] for c in y[:n]]
        return image_grid(images, titles, columns=columns)


def prepare_landcover_data(
    path: PathLike | Sequence[PathLike],
    *,
    size: int = 64,
    batch_size: int = 32,
    val_split_pct: float = 0.2,
    seed: int = 42,
    stats: NormStats | None = None,
    num_workers: int = 0,
) -> LandCoverDataLoaders:
    """Make fastai DataLoaders of land-cover patches from one folder per class.

    Args:
        path: the folder holding one sub-folder of images per class (EuroSAT's ``2750``,
            or a folder that holds only that one folder), or a list of such folders,
            whose classes are merged by name (for example EuroSAT plus your own).
        size: pixels a side the images are resized to.
        batch_size: patches per batch.
        val_split_pct: share of each class held out for validation, drawn with ``seed``.
        seed: seed of the split, the statistics sample and the shuffling.
        stats: normalisation statistics (0-255 units) to use instead of the training
            images' own, e.g. a trained classifier's ``spec.stats`` to evaluate it.
        num_workers: background processes reading images (0 reads in the main process).

    Returns:
        :class:`LandCoverDataLoaders` with ``.train``, ``.valid``, ``.classes``, ``.stats``
        and ``.show_batch()``.

    Raises:
        PatchesFolderError: ``path`` has no class folders with images in them.

    Example:
        >>> import tempfile
        >>> from cdtools.synthetic import make_landcover_patches
        >>> folder = make_landcover_patches(tempfile.mkdtemp(), n_per_class=5, size=32)
        >>> dls = prepare_landcover_data(folder, size=32, batch_size=4)
        >>> len(dls.classes), len(dls.train_ds), len(dls.valid_ds)
        (10, 40, 10)
    """
    from fastai.data.core import Datasets
    from fastai.data.transforms import (
        Categorize,
        IntToFloatTensor,
        Normalize,
        ToTensor,
        parent_label,
    )
    from fastai.torch_core import default_device
    from fastai.vision.augment import Resize, ResizeMethod

    if size < 16:
        raise ParameterError(f"size must be at least 16 pixels, got {size}.")
    if batch_size < 1:
        raise ParameterError(f"batch_size must be at least 1, got {batch_size}.")
    if not 0.0 < val_split_pct < 1.0:
        raise ParameterError(f"val_split_pct must be between 0 and 1, got {val_split_pct}.")
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths:
        raise ParameterError("prepare_landcover_data needs at least one folder.")
    found = [find_class_folders(p) for p in paths]
    root, by_class = found[0][0], {}
    for _, classes_here in found:
        for name, images in classes_here.items():
            by_class.setdefault(name, []).extend(images)
    by_class = dict(sorted(by_class.items()))
    classes = tuple(by_class)
    train, valid = _split(by_class, val_split_pct, seed)
    if not train or not valid:
        raise PatchesFolderError(
            f"{root} holds too few images to split off {val_split_pct:.0%} for validation; "
            "add images or change val_split_pct."
        )
    stats = _image_stats(train, seed) if stats is None else stats
    if len(stats.mean) != len(BANDS):
        raise ParameterError(f"stats must have {len(BANDS)} bands (RGB), got {len(stats.mean)}.")
    datasets = Datasets(
        train + valid,
        [[_image_reader(train + valid)], [parent_label, Categorize(vocab=classes)]],
        splits=(list(range(len(train))), list(range(len(train), len(train) + len(valid)))),
    )
    loaders = datasets.dataloaders(
        bs=batch_size,
        after_item=[Resize(size, method=ResizeMethod.Squish), _dihedral(seed), ToTensor()],
        after_batch=[
            IntToFloatTensor(),
            Normalize.from_stats([m / 255 for m in stats.mean], [s / 255 for s in stats.std]),
        ],
        drop_last=len(train) > batch_size,
        num_workers=num_workers,
        device=default_device(),
        path=root,
    )
    loaders.train.rng = random.Random(seed)
    dls = LandCoverDataLoaders(*loaders.loaders, path=root, device=loaders.device)
    dls.classes, dls.bands, dls.size, dls.stats = classes, BANDS, int(size), stats
    dls.colours = class_colours(classes)
    log.info(
        "prepare_landcover_data: %d training and %d validation patches", len(train), len(valid)
    )
    return dls


def _image_reader(paths: list[Path]) -> Any:
    """``PILImage.create``, remembering each decoded image when the whole set fits in
    :data:`IN_MEMORY_BYTES` (the transforms after it return new images, never edit it)."""
    from fastai.vision.core import PILImage

    first = PILImage.create(paths[0])
    if first.width * first.height * len(first.getbands()) * len(paths) > IN_MEMORY_BYTES:
        return PILImage.create
    decoded: dict[Path, Any] = {}

    def read(path: Path) -> Any:
        if path not in decoded:
            decoded[path] = PILImage.create(path)
        return decoded[path]

    return read


def _dihedral(seed: int) -> Any:
    """fastai's DihedralItem (one of the 8 flips and quarter turns), drawn from ``seed``."""
    from fastai.vision.augment import DihedralItem

    item, rng = DihedralItem(p=1.0), random.Random(seed)

    def before_call(b: Any, split_idx: int | None = None) -> None:
        # DihedralItem's own draws from the global `random`; this one from `seed`.
        item.do, item.k = True, rng.randint(0, 7)

    item.before_call = before_call
    return item


def find_class_folders(path: PathLike) -> tuple[Path, dict[str, list[Path]]]:
    """The class folders under ``path`` and their images, classes sorted by name.

    A folder holding a single folder of class folders (EuroSAT's ``eurosat/2750``) works too.

    Example:
        >>> find_class_folders("eurosat/2750")  # doctest: +SKIP
        (PosixPath('eurosat/2750'), {'AnnualCrop': [...], ...})
    """
    root = Path(path)
    if not root.is_dir():
        raise PatchesFolderError(
            f"{root} is not a folder; pass the folder holding one folder of images per class."
        )
    by_class = {
        folder.name: sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for folder in sorted(root.iterdir())
        if folder.is_dir() and not folder.name.startswith(".")
    }
    by_class = {name: images for name, images in by_class.items() if images}
    subfolders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if not by_class and len(subfolders) == 1:
        return find_class_folders(subfolders[0])
    if len(by_class) < 2:
        raise PatchesFolderError(
            f"{root} does not hold class folders of images (found {len(by_class)}); the layout "
            "is <folder>/<Class>/<image>.png|jpg, one folder per class, as in EuroSAT. Make "
            "one with cdtools.make_landcover_patches or fetch EuroSAT with "
            "cdtools.fetch('eurosat-rgb')."
        )
    return root, by_class


def class_colours(classes: Sequence[str]) -> tuple[str, ...]:
    """A hex colour per class: the sample world's for EuroSAT classes, tab20 for others."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    palette = colormaps["tab20"]
    return tuple(
        LANDCOVER_COLOURS[EUROSAT_CLASSES.index(name)]
        if name in EUROSAT_CLASSES
        else to_hex(palette(i % 20))
        for i, name in enumerate(classes)
    )


def image_grid(
    images: np.ndarray,
    titles: Sequence[str],
    *,
    colours: Sequence[str] | None = None,
    columns: int = 4,
    size: float = 2.2,
) -> Figure:
    """A grid of ``(n, bands, h, w)`` 0-255 images (first three bands as RGB) with titles."""
    import matplotlib.pyplot as plt

    n = len(images)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(
        rows, columns, figsize=(columns * size, rows * (size + 0.35)), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        rgb = images[i][[0, 1, 2] if images.shape[1] >= 3 else [0, 0, 0]]
        ax.imshow(np.clip(np.nan_to_num(rgb) / 255, 0, 1).transpose(1, 2, 0))
        ax.set_title(titles[i], fontsize=8, color=colours[i] if colours else "black")
    fig.tight_layout()
    plt.close(fig)
    return fig


def _split(
    by_class: dict[str, list[Path]], val_split_pct: float, seed: int
) -> tuple[list[Path], list[Path]]:
    """The same share of every class for validation (a stratified split), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for images in by_class.values():
        order = rng.permutation(len(images))
        n_valid = min(len(images) - 1, max(1, round(len(images) * val_split_pct)))
        valid += [images[i] for i in sorted(order[:n_valid])]
        train += [images[i] for i in sorted(order[n_valid:])]
    return train, valid


def _image_stats(files: list[Path], seed: int) -> NormStats:
    """Per-band mean and std (0-255 units) over up to STATS_SAMPLE training images."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    picked = rng.choice(len(files), size=min(len(files), STATS_SAMPLE), replace=False)
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for i in sorted(picked.tolist()):
        with Image.open(files[i]) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3)
        total += pixels.sum(0)
        total_sq += (pixels**2).sum(0)
        count += len(pixels)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    std = np.where(std < 1e-6, 1.0, std)
    return NormStats(
        tuple(round(float(m), 4) for m in mean), tuple(round(float(s), 4) for s in std), "dataset"
    )
