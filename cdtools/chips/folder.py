"""Folders of chips: find the layout, match before/after/label files, read one chip.

Layouts read: cdtools' and arcgis.learn's export (images_before/, images_after/,
labels/), arcgis.learn's older export (images/, images2/, labels/) and LEVIR-CD (A/, B/,
label/, optionally inside train/, val/ and test/ folders, which then give the split).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cdtools.chips.labels import CODINGS, ZERO_ONE, coding_of
from cdtools.errors import ChipsFolderError, RasterError
from cdtools.io.raster import PathLike, open_raster

LAYOUTS: dict[str, tuple[str, str, str]] = {
    "arcgis": ("images_before", "images_after", "labels"),
    "arcgis_images2": ("images", "images2", "labels"),
    "levir": ("A", "B", "label"),
}
SPLIT_NAMES = {"train": "train", "val": "valid", "valid": "valid", "test": "test"}
IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp"}


@dataclass(frozen=True)
class Chip:
    """The three files of one chip, and how its label file is coded (a key of CODINGS)."""

    before: Path
    after: Path
    label: Path
    coding: str = ZERO_ONE


@dataclass(frozen=True)
class ChipFolder:
    """A folder of chips: its layout, chips per split, and how its labels are coded.

    ``splits`` maps "all" (no split on disk) or "train"/"valid"/"test" to chips.
    """

    path: Path
    layout: str
    splits: dict[str, list[Chip]]
    coding: str


def find_chips(path: PathLike) -> ChipFolder:
    """Find the chips under ``path`` and check that every chip has all three files.

    Example:
        >>> folder = find_chips("chips")  # doctest: +SKIP
        >>> folder.layout, len(folder.splits["all"])
        ('arcgis', 120)
    """
    root = Path(path)
    if not root.is_dir():
        raise ChipsFolderError(
            f"{root} is not a folder; pass the folder export_training_data wrote."
        )
    split_dirs = {
        SPLIT_NAMES[d.name]: d
        for d in sorted(root.iterdir())
        if d.name in SPLIT_NAMES and d.is_dir()
    }
    if split_dirs and _layout_of(root) is None:
        layouts = {name: _layout_of(d) for name, d in split_dirs.items()}
        layout = next((v for v in layouts.values() if v), None)
        if layout is None or "train" not in split_dirs:
            raise ChipsFolderError(_layout_help(root))
        splits = {name: _match(split_dirs[name], layout) for name in split_dirs}
    else:
        layout = _layout_of(root)
        if layout is None:
            raise ChipsFolderError(_layout_help(root))
        splits = {"all": _match(root, layout)}
    labels = [chip.label for chips in splits.values() for chip in chips]
    coding = _coding(root, labels)
    splits = {name: [replace(c, coding=coding) for c in chips] for name, chips in splits.items()}
    return ChipFolder(root, layout, splits, coding)


def _layout_of(folder: Path) -> str | None:
    for name, dirs in LAYOUTS.items():
        if all((folder / d).is_dir() for d in dirs):
            return name
    return None


def _layout_help(root: Path) -> str:
    known = "; ".join("/, ".join(d) + "/" for d in LAYOUTS.values())
    found = sorted(p.name for p in root.iterdir())[:8]
    return (
        f"{root} is not a chips folder: expected sub-folders {known} (LEVIR-CD's may sit in "
        f"train/, val/, test/), found {found}. Create chips with cdtools.export_training_data."
    )


def _match(folder: Path, layout: str) -> list[Chip]:
    dirs = [folder / d for d in LAYOUTS[layout]]
    stems = [_images_by_stem(d) for d in dirs]
    names = set().union(*stems)
    if not names:
        raise ChipsFolderError(f"{dirs[0]} holds no images; the export may have failed.")
    for d, found in zip(dirs, stems, strict=True):
        missing = sorted(names - set(found))
        if missing:
            raise ChipsFolderError(
                f"{len(missing)} chips have no file in {d.relative_to(folder.parent)}/ "
                f"(for example {missing[:3]}); each chip needs a before, an after and a label "
                "file with the same name. Re-export, or remove the incomplete chips."
            )
    return [Chip(*(found[n] for found in stems)) for n in sorted(names)]


def _images_by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _coding(root: Path, labels: list[Path]) -> str:
    """How labels are coded: export.json says so, otherwise their values decide.

    0/255 sets mean 255 = change; sets with 1 mean 0/1 with 255 = ignore.
    """
    summary = root / "export.json"
    values: set[int] = set()
    if summary.exists():
        stated = json.loads(summary.read_text()).get("label_values", {})
        values = {int(stated["change"])} if "change" in stated else set()
    if not values:
        for label in labels:
            values.update(np.unique(read_label_values(label)).tolist())
    return coding_of(values, f"labels under {root}")


def read_label_values(path: Path) -> np.ndarray:
    """The raw values of a label chip as a 2-D uint8 array."""
    data = read_chip_file(path)
    if data.shape[0] != 1 and not (data == data[:1]).all():
        raise ChipsFolderError(
            f"label {path.name} has {data.shape[0]} different bands; it needs one."
        )
    return data[0].astype(np.uint8)


def read_chip_file(path: Path) -> np.ndarray:
    """Read a chip file as ``(bands, height, width)``, with a clear error if it is broken."""
    try:
        with open_raster(path) as src:
            return src.read()
    except RasterError as err:
        raise ChipsFolderError(f"chip {path} could not be read ({err}); re-export it.") from None


def read_chip(chip: Chip) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read one chip as (before, after, mask); mask is coded 0/1/255."""
    before, after = read_chip_file(chip.before), read_chip_file(chip.after)
    mask = CODINGS[chip.coding][read_label_values(chip.label)]
    if before.shape != after.shape or before.shape[1:] != mask.shape:
        raise ChipsFolderError(
            f"chip {chip.before.name} does not match up: before {before.shape}, after "
            f"{after.shape}, label {mask.shape}; re-export the chips."
        )
    return before, after, mask
