"""Sparse labels: two masks of sample pixels (change, unchanged) as one 0/1/255 label raster.

Landsat change sets such as Taizhou and Nanjing label a few thousand pixels, not whole
scenes: one image marks pixels known to have changed, another pixels known not to have.
:func:`masks_to_labels` turns the pair into the label raster that
:func:`cdtools.export_training_data` reads, with every other pixel 255 = ignore, so that
losses and metrics leave the unlabelled pixels out.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from cdtools.chips.labels import CHANGE, IGNORE, NO_CHANGE
from cdtools.errors import CdtoolsWarning, GridError, LabelError, OutputExistsError, ParameterError
from cdtools.io.raster import PathLike, RasterInfo, describe, read_image, write_geotiff

log = logging.getLogger(__name__)

TIFF_SUFFIXES = {".tif", ".tiff"}
DESCRIPTION = "change labels: 1 = change, 0 = no change, 255 = unlabelled (ignore)"


def masks_to_labels(
    change: PathLike,
    unchanged: PathLike,
    out_path: PathLike,
    *,
    like: PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a label raster from a mask of changed and a mask of unchanged sample pixels.

    A mask marks a pixel where its value is above 0 in any band (so 0/255 and 0/1
    images, grey or RGB, all work; nodata pixels are never marked). The output is a
    one-band uint8 GeoTIFF with 1 where ``change`` marks a pixel, 0 where ``unchanged``
    marks one and 255 (ignore, also the file's nodata value) everywhere else. A pixel
    marked by both masks is ambiguous: it becomes 255 and a :class:`CdtoolsWarning`
    says how many there are. The file is written to a temporary name and renamed into
    place, and :func:`cdtools.export_training_data` takes it as any 0/1/255 label raster
    (chips without a labelled pixel are skipped there).

    Args:
        change: image marking changed pixels (BMP, PNG, GeoTIFF, anything rasterio reads).
        unchanged: image marking unchanged pixels, the same size as ``change``.
        out_path: GeoTIFF to write (.tif or .tiff).
        like: the raster the labels belong to (usually the before image); the output
            takes its CRS and transform, and the masks must have its size. Without it,
            the output takes the georeferencing of ``change`` (none for a BMP or PNG).
        overwrite: replace an existing ``out_path``.

    Returns:
        ``out_path``.

    Raises:
        LabelError: a mask marks no pixel or every pixel, or every pixel of one mask is
            also marked by the other.
        GridError: the masks differ in size from each other or from ``like``, or sit on
            another grid than ``like``.
        OutputExistsError: ``out_path`` exists and ``overwrite`` is False.

    Example:
        >>> labels = masks_to_labels(  # doctest: +SKIP
        ...     "Taizhou/change.bmp", "Taizhou/unchanged.bmp", "taizhou_labels.tif",
        ...     like="Taizhou/2000TM",
        ... )
        >>> export_training_data("Taizhou/2000TM", "Taizhou/2003TM", labels, "chips",
        ...                      chip_size=64, stride=32)  # doctest: +SKIP
    """
    out_path = Path(out_path)
    _check_output(out_path, overwrite=overwrite)
    changed, change_info = _marked(change)
    kept, unchanged_info = _marked(unchanged)
    if changed.shape != kept.shape:
        raise GridError(
            f"{change_info.path.name} is {_size(change_info)} but {unchanged_info.path.name} "
            f"is {_size(unchanged_info)}; both masks must cover the same pixels. Resample one "
            "onto the other (nearest neighbour) or pass the masks drawn for this image."
        )
    _check_georeferencing(change_info, unchanged_info)
    grid = describe(like) if like is not None else change_info
    if like is not None:
        for info in (change_info, unchanged_info):
            _check_on_grid(info, grid)
    both = changed & kept
    if both.any():
        for mask, info in ((changed, change_info), (kept, unchanged_info)):
            if not (mask & ~both).any():
                raise LabelError(
                    f"every pixel {info.path.name} marks is also marked by the other mask "
                    f"({int(both.sum())} pixels), so it would add no label; check that "
                    "change and unchanged are two different files, and that neither marks "
                    "the other's samples as well (remove them from it first)."
                )
        row, col = (int(v) for v in np.argwhere(both)[0])
        warnings.warn(
            f"{change_info.path.name} (change) and {unchanged_info.path.name} (unchanged) "
            f"both mark {int(both.sum())} pixel(s), the first at row {row}, column {col}; "
            "they are labelled 255 (ignore). Edit the masks if they should count.",
            CdtoolsWarning,
            stacklevel=2,
        )
    labels = np.full(changed.shape, IGNORE, dtype=np.uint8)
    labels[kept & ~both] = NO_CHANGE
    labels[changed & ~both] = CHANGE
    write_geotiff(
        out_path,
        labels,
        transform=grid.transform if grid.crs is not None else None,
        crs=grid.crs,
        nodata=IGNORE,
        descriptions=[DESCRIPTION],
    )
    log.info(
        "masks_to_labels: %d change, %d no change, %d ignored pixels written to %s",
        int((labels == CHANGE).sum()),
        int((labels == NO_CHANGE).sum()),
        int((labels == IGNORE).sum()),
        out_path,
    )
    return out_path


def _check_output(out_path: Path, *, overwrite: bool) -> None:
    if out_path.suffix.lower() not in TIFF_SUFFIXES:
        raise ParameterError(
            f"out_path must be a GeoTIFF (.tif), got {out_path.name}; "
            f"for example {out_path.with_suffix('.tif').name}."
        )
    if out_path.is_dir():
        raise OutputExistsError(f"{out_path} is a folder; pass a file name such as labels.tif.")
    if out_path.exists() and not overwrite:
        raise OutputExistsError(
            f"{out_path} already exists; pass overwrite=True to replace it, or choose another name."
        )


def _marked(mask: PathLike) -> tuple[np.ndarray, RasterInfo]:
    """Where a mask image marks a pixel (> 0 in any band and not nodata), and its header."""
    info = describe(mask)
    data, valid, _ = read_image(mask)
    marked = (data > 0).any(axis=0) & valid
    count = int(marked.sum())
    if count == 0:
        raise LabelError(
            f"{info.path} marks no pixel (all 0 or nodata); a sparse mask is above 0 where "
            "a pixel is labelled. Pass the mask that holds the samples."
        )
    if count == marked.size:
        raise LabelError(
            f"{info.path} marks every pixel ({_size(info)}); a sparse mask is above 0 only "
            "where a pixel is labelled. If it is inverted (0 marks the samples), invert it; "
            "if the labels cover the whole image, pass them to export_training_data as a "
            "label raster instead."
        )
    return marked, info


def _check_georeferencing(a: RasterInfo, b: RasterInfo) -> None:
    if not _same_grid(a, b):
        raise GridError(
            f"{a.path.name} ({a.crs}) and {b.path.name} ({b.crs}) are georeferenced on "
            "different grids; warp one onto the other, e.g. `rio warp "
            f"{b.path.name} {b.path.stem}_aligned.tif --like {a.path.name} --resampling nearest`."
        )


def _check_on_grid(mask: RasterInfo, grid: RasterInfo) -> None:
    if (mask.width, mask.height) != (grid.width, grid.height):
        raise GridError(
            f"mask {mask.path.name} is {_size(mask)} but {grid.path.name} is {_size(grid)}; "
            "the masks need one value per pixel of the image. Pass the masks drawn on this "
            "image, or resample them onto it with nearest neighbour first."
        )
    if not _same_grid(grid, mask):
        raise GridError(
            f"mask {mask.path.name} is georeferenced ({mask.crs}, origin "
            f"{mask.transform.c:.1f}, {mask.transform.f:.1f}) on another grid than "
            f"{grid.path.name} ({grid.crs}, origin {grid.transform.c:.1f}, "
            f"{grid.transform.f:.1f}); warp it onto the image with nearest neighbour "
            "resampling, or check that both show the same place."
        )


def _same_grid(a: RasterInfo, b: RasterInfo) -> bool:
    """False only when both rasters are georeferenced and their CRS or transform differ."""
    if a.crs is None or b.crs is None:
        return True
    return a.crs == b.crs and np.allclose(
        tuple(a.transform)[:6], tuple(b.transform)[:6], atol=a.res[0] * 1e-3
    )


def _size(info: RasterInfo) -> str:
    return f"{info.width}x{info.height}"
