"""Export training data: cut a before/after pair and its change labels into chips.

The scene is read one strip of chips at a time (``chip_size`` rows), never whole, so
rasters larger than memory export fine. Everything is written into a hidden staging
folder beside ``out_dir`` and renamed into place only when the export has finished.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from rasterio.transform import Affine

from cdtools import __version__
from cdtools.chips.labels import CHANGE, IGNORE, label_reader
from cdtools.chips.writer import ChipWriter, write_index
from cdtools.errors import OutputExistsError, ParameterError
from cdtools.io.raster import (
    PathLike,
    check_same_grid,
    describe,
    open_raster,
    read_window,
)

log = logging.getLogger(__name__)

Layout = Literal["arcgis", "levir"]
ImageFormat = Literal["tif", "png"]

#: Folder names of each layout: (before, after, labels).
LAYOUT_FOLDERS: dict[str, tuple[str, str, str]] = {
    "arcgis": ("images_before", "images_after", "labels"),
    "levir": ("A", "B", "label"),
}
INDEX_NAME = "chips.geojson"
WRITE_THREADS = min(4, os.cpu_count() or 1)
SUMMARY_NAME = "export.json"


def export_training_data(
    before: PathLike,
    after: PathLike,
    labels: PathLike,
    out_dir: PathLike,
    *,
    chip_size: int = 256,
    stride: int = 64,
    min_change_fraction: float = 0.0,
    image_format: ImageFormat = "tif",
    layout: Layout = "arcgis",
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Cut a pair of co-registered images and their change labels into training chips.

    Chips start every ``stride`` pixels; those at the right and bottom edges run past the
    scene and are padded (image 0, label 255 = ignore) rather than dropped. Labels are 0/1
    with 255 = ignore in the "arcgis" layout and 0/255 in the "levir" layout (as LEVIR-CD
    has them; ignored pixels become 0 there). GeoTIFF chips keep their georeferencing.
    Chips without a single labelled pixel (all nodata, or outside sparse labels) are skipped.

    Args:
        before: raster of the earlier date (GeoTIFF, or PNG/JPEG without georeferencing).
        after: raster of the later date, on the same grid as ``before``.
        labels: change polygons (GeoJSON, GeoPackage, Shapefile; any CRS) or a label
            raster on the same grid (0/1 with 255 = ignore, or 0/255).
        out_dir: folder to create; it must not hold anything unless ``overwrite=True``.
        chip_size: chip width and height in pixels.
        stride: step between chip origins in pixels (< chip_size gives overlapping chips).
        min_change_fraction: skip chips whose labelled pixels are less changed than this.
        image_format: "tif" (georeferenced GeoTIFF) or "png".
        layout: "arcgis" (images_before/, images_after/, labels/) or "levir" (A/, B/, label/).
        overwrite: replace an earlier export in ``out_dir`` (only after the new one is done).
        progress: show a progress bar.

    Returns:
        ``out_dir``, holding the chip folders, chips.geojson (one footprint per chip with
        id, row, col and change fraction) and export.json (parameters and counts).

    Example:
        >>> world = make_scene_pair("sample")  # doctest: +SKIP
        >>> export_training_data(world.before, world.after, world.change_polygons, "chips")
        PosixPath('chips')
    """
    _check_options(chip_size, stride, min_change_fraction, image_format, layout)
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, overwrite=overwrite)
    grid = describe(before)
    check_same_grid(grid, describe(after))
    if chip_size > min(grid.width, grid.height):
        raise ParameterError(
            f"chip_size={chip_size} is larger than the scene ({grid.width}x{grid.height}); "
            f"use chip_size <= {min(grid.width, grid.height)}."
        )
    if image_format == "png" and (grid.count > 4 or grid.dtype not in ("uint8", "uint16")):
        raise ParameterError(
            f"PNG holds 1-4 bands of uint8 or uint16, and these images have {grid.count} "
            f"bands of {grid.dtype}; use image_format='tif'."
        )
    read_labels, label_info = label_reader(labels, grid)
    rows = _starts(grid.height, chip_size, stride)
    cols = _starts(grid.width, chip_size, stride)
    with _staging(out_dir) as stage:
        folders = [stage / name for name in LAYOUT_FOLDERS[layout]]
        for folder in folders:
            folder.mkdir()
        writer = ChipWriter(grid, image_format, levir=layout == "levir")
        index: list[dict[str, Any]] = []
        counts = {"candidates": len(rows) * len(cols), "skipped_unlabelled": 0, "skipped_low": 0}
        bar = _progress(len(rows) * len(cols), enabled=progress)
        # GDAL releases the GIL while encoding, so chips of one strip are written by threads.
        # GDAL's block cache defaults to 5% of RAM; a few strips' worth is all export needs.
        strip_width = cols[-1] + chip_size
        strip_bytes = chip_size * strip_width * grid.count * np.dtype(grid.dtype).itemsize
        cache_mb = max(64, 4 * 2 * strip_bytes // 2**20)
        with (
            rasterio.Env(GDAL_CACHEMAX=cache_mb),
            open_raster(before) as src_b,
            open_raster(after) as src_a,
            ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool,
        ):
            for row in rows:
                img_b, valid_b = read_window(src_b, row, 0, chip_size, strip_width)
                img_a, valid_a = read_window(src_a, row, 0, chip_size, strip_width)
                label = read_labels(row, 0, chip_size, strip_width)
                label[~(valid_b & valid_a)] = IGNORE
                writes = []
                for col in cols:
                    bar.update()
                    window = (slice(None), slice(None), slice(col, col + chip_size))
                    chip_label = label[:, col : col + chip_size]
                    labelled = int((chip_label != IGNORE).sum())
                    if labelled == 0:
                        counts["skipped_unlabelled"] += 1
                        continue
                    fraction = float((chip_label == CHANGE).sum()) / labelled
                    if fraction < min_change_fraction:
                        counts["skipped_low"] += 1
                        continue
                    name = f"{len(index):09d}.{image_format}"
                    transform = grid.transform @ Affine.translation(col, row)
                    writes += [
                        pool.submit(writer.image, folders[0] / name, img_b[window], transform),
                        pool.submit(writer.image, folders[1] / name, img_a[window], transform),
                        pool.submit(writer.label, folders[2] / name, chip_label, transform),
                    ]
                    index.append(
                        {
                            "id": len(index),
                            "file": name,
                            "row": row,
                            "col": col,
                            "change_fraction": round(fraction, 6),
                        }
                    )
                for write in writes:
                    write.result()  # re-raises the first failed write
        bar.close()
        write_index(stage / INDEX_NAME, index, grid, chip_size)
        summary = {
            "cdtools_version": __version__,
            "created_by": "cdtools.export_training_data",
            "sources": {
                "before": str(Path(before).resolve()),
                "after": str(Path(after).resolve()),
                "labels": str(Path(labels).resolve()),
            },
            "label_source": label_info,
            "layout": layout,
            "folders": dict(
                zip(("before", "after", "labels"), LAYOUT_FOLDERS[layout], strict=True)
            ),
            "image_format": image_format,
            "chip_size": chip_size,
            "stride": stride,
            "min_change_fraction": min_change_fraction,
            "label_values": {"no_change": 0, "change": 255}
            if layout == "levir"
            else {"no_change": 0, "change": 1, "ignore": 255},
            "crs": grid.crs.to_wkt() if grid.crs else None,
            "epsg": grid.crs.to_epsg() if grid.crs else None,
            "transform": list(grid.transform)[:6],
            "scene_size": [grid.width, grid.height],
            "bands": grid.count,
            "dtype": grid.dtype,
            "counts": {**counts, "chips": len(index)},
        }
        (stage / SUMMARY_NAME).write_text(json.dumps(summary, indent=2))
    log.info("exported %d chips to %s", len(index), out_dir)
    return out_dir


def _check_options(
    chip_size: int, stride: int, min_change_fraction: float, image_format: str, layout: str
) -> None:
    if not isinstance(chip_size, int) or chip_size < 8:
        raise ParameterError(f"chip_size must be an integer >= 8, got {chip_size!r}.")
    if not isinstance(stride, int) or stride <= 0:
        raise ParameterError(
            f"stride must be a positive number of pixels, got {stride!r}; "
            f"stride={chip_size} gives chips that touch, smaller strides overlap."
        )
    if not 0.0 <= min_change_fraction <= 1.0:
        raise ParameterError(f"min_change_fraction must be in [0, 1], got {min_change_fraction}.")
    if image_format not in ("tif", "png"):
        raise ParameterError(f"image_format must be 'tif' or 'png', got {image_format!r}.")
    if layout not in LAYOUT_FOLDERS:
        raise ParameterError(f"layout must be one of {sorted(LAYOUT_FOLDERS)}, got {layout!r}.")


def _starts(length: int, chip: int, stride: int) -> list[int]:
    """Chip origins along one axis: every ``stride`` until the scene is covered."""
    last = max(length - chip, 0)
    starts = list(range(0, last + 1, stride))
    if starts[-1] < last:  # the edge chip: runs past the scene, padded
        starts.append(starts[-1] + stride)
    return [s for s in starts if s < length]


def _check_out_dir(out_dir: Path, *, overwrite: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise OutputExistsError(f"{out_dir} is a file; choose a folder name for the chips.")
    contents = list(out_dir.iterdir())
    if not contents:
        return
    is_export = (out_dir / SUMMARY_NAME).exists() or any(
        (out_dir / folders[0]).is_dir() for folders in LAYOUT_FOLDERS.values()
    )
    if not is_export:
        raise OutputExistsError(
            f"{out_dir} holds {len(contents)} files that are not chips; refusing to touch "
            "them. Choose an empty or new folder."
        )
    if not overwrite:
        raise OutputExistsError(
            f"{out_dir} already holds an export; pass overwrite=True to replace it "
            "(the old chips are removed only once the new export has finished)."
        )


@contextlib.contextmanager
def _staging(out_dir: Path) -> Iterator[Path]:
    """A hidden folder beside ``out_dir`` that replaces it only if the block succeeds."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(
        tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent)
    )
    try:
        yield stage
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.old")
            out_dir.rename(old)
            stage.rename(out_dir)
            shutil.rmtree(old)
        else:
            stage.rename(out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _progress(total: int, *, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="export", unit="chip", disable=not enabled or None)
