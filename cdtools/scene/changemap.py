"""Change maps: a change probability raster, from any of its forms, as an array in memory.

:func:`read_change_map` takes what :func:`cdtools.predict_scene` returns (uint8 probability
x 255, 255: no data), what ``ChangeDetector.predict`` returns (float in [0, 1], NaN: no
data), a 0/1 change mask, or the GeoTIFF of any of them, and gives a :class:`ChangeMap`:
float32 probability in [0, 1] with NaN where there is no data, its transform and CRS.
:func:`encode_probability` is the uint8 encoding, for predict_scene and the command line.
:func:`threshold_change` turns a lazy change map into a 0/1 mask, and :func:`pair_on_grid`
finds the two dates on a change map's own grid.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine

from cdtools.errors import GridError, ParameterError
from cdtools.io.raster import open_raster

#: uint8 value for pixels where either date has no data; probability p is stored as
#: min(round(255 p), 254), so p = value / 255 within 1/255 (:func:`encode_probability`).
NODATA = 255
LONG_NAMES = {
    "uint8": "change probability x 255 (255: no data)",
    "float32": "change probability (NaN: no data)",
}


@dataclass(frozen=True)
class ChangeMap:
    """A change map in memory: probability in [0, 1] (NaN: no data) and its grid."""

    prob: np.ndarray
    transform: Affine
    crs: CRS | None
    threshold: float | None  # the one stored with the map, if any


def encode_probability(prob: np.ndarray) -> np.ndarray:
    """Probability in [0, 1] (NaN: no data) as predict_scene's uint8: ``min(round(255 p),
    254)``, and 255 (:data:`NODATA`) for NaN. Decode with value / 255 (within 1/510).

    Example:
        >>> encode_probability(np.array([0.0, 0.5, 1.0, np.nan], np.float32))
        array([  0, 128, 254, 255], dtype=uint8)
    """
    coded = np.minimum(np.round(np.nan_to_num(prob) * 255), NODATA - 1).astype(np.uint8)
    return np.where(np.isnan(prob), np.uint8(NODATA), coded)


def read_change_map(prob: Any) -> ChangeMap:
    """A change map (DataArray, array or GeoTIFF path) as probability in [0, 1], NaN: no data.

    uint8 maps hold probability x 255 with 255 (or the map's nodata) as no data, or 0/1
    when described as a change mask (``cdtools predict --mask``); float maps hold [0, 1]
    with NaN as no data. An array without a grid is in pixel units.

    Example:
        >>> read_change_map("change.tif").prob.shape  # doctest: +SKIP
        (1024, 1024)
    """
    if isinstance(prob, ChangeMap):
        return prob
    if isinstance(prob, str | os.PathLike):
        with open_raster(Path(prob)) as src, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*no geotransform.*")
            values, valid = src.read(1), src.read_masks(1) > 0
            stored, mask = src.tags().get("threshold"), _is_mask(src.descriptions[0])
            return ChangeMap(
                _decode(values, valid, None, mask=mask), src.transform, src.crs,
                float(stored) if stored is not None else None,
            )  # fmt: skip
    if isinstance(prob, np.ndarray):  # no grid: pixel units
        nodata = NODATA if prob.dtype == np.uint8 else None
        return ChangeMap(_decode(prob, None, nodata), Affine.identity(), None, None)
    import rioxarray  # noqa: F401 (registers the .rio accessor)

    if "band" in prob.dims and prob.sizes["band"] == 1:
        prob = prob.squeeze("band", drop=True)
    if prob.ndim != 2:
        raise ParameterError(
            f"a change map has one band, got dims {dict(prob.sizes)}; pass one band (y, x)."
        )
    values, nodata = np.asarray(prob.values), prob.rio.nodata
    if nodata is None and values.dtype == np.uint8:
        nodata = NODATA
    values = _decode(values, None, nodata, mask=_is_mask(prob.attrs.get("long_name")))
    stored = prob.attrs.get("threshold")
    return ChangeMap(
        values, transform_of(prob), prob.rio.crs, float(stored) if stored is not None else None
    )


def _is_mask(description: Any) -> bool:
    """Whether a band is a 0/1 change mask (``cdtools predict --mask``), not probability x 255."""
    return isinstance(description, str) and description.startswith("change mask")


def _decode(
    values: np.ndarray, valid: np.ndarray | None, nodata: float | None, *, mask: bool = False
) -> np.ndarray:
    """Probability in [0, 1] as float32, NaN where not ``valid`` or equal to ``nodata``."""
    valid = np.ones(values.shape, dtype=bool) if valid is None else valid
    if values.dtype == np.uint8:
        if nodata is not None:
            valid &= values != nodata
        prob = values.astype(np.float32) / (1 if mask else 255)
    elif np.issubdtype(values.dtype, np.floating) or values.dtype == bool:
        prob = values.astype(np.float32)
        valid &= np.isfinite(prob)
        if nodata is not None and np.isfinite(nodata):
            valid &= values != nodata
        low, high = (prob[valid].min(), prob[valid].max()) if valid.any() else (0.0, 0.0)
        if low < 0 or high > 1:
            raise ParameterError(
                f"change probabilities must lie in [0, 1], these span {low:g} to {high:g}; "
                "a uint8 map read as float holds probability x 255: divide it by 255, or "
                "pass the GeoTIFF's path."
            )
    else:
        raise ParameterError(
            f"a change map must be uint8 (probability x 255) or float in [0, 1], got "
            f"{values.dtype}."
        )
    return np.where(valid, prob, np.float32(np.nan))


def transform_of(data: Any) -> Affine:
    """A DataArray's affine transform (``.rio``), or the identity when it has no x/y grid."""
    try:
        return data.rio.transform()
    except Exception:  # no x/y coordinates: plain pixel grid
        return Affine.identity()


def threshold_change(change: Any, threshold: float) -> Any:
    """0/1 change mask of :func:`cdtools.predict_scene`'s uint8 result, lazily; 255 stays 255.

    A pixel is change where its probability (value / 255) is above ``threshold``.
    """

    def block(values: np.ndarray) -> np.ndarray:
        mask = (values.astype(np.float32) / 255 > threshold).astype(np.uint8)
        return np.where(values == NODATA, np.uint8(NODATA), mask)

    data = change.data.map_blocks(block, dtype=np.uint8, token="cdtools-threshold")
    attrs = {**change.attrs, "long_name": "change mask (0/1, 255: no data)"}
    attrs["threshold"] = threshold
    return change.copy(data=data).assign_attrs(attrs)


def pair_on_grid(
    before: Any, after: Any, change: Any, *, bands: Sequence[int] | None = None
) -> Any:
    """The pair of ``before`` and ``after`` (their ``bands``, all when None) on the grid of a
    change map (a RasterInfo).

    A change map from ``cdtools predict`` (or ``predict_scene``) is on one of the grids
    :func:`cdtools.load_pair` makes from its dates; each is tried (intersection first,
    the default of ``cdtools predict``) at the map's resolution, and the first that holds
    the map's grid as a whole-pixel window is cropped to it. So the patches are read
    exactly as the model saw them, with no second resampling; a map on another grid is a
    :class:`~cdtools.errors.GridError`.
    """
    from cdtools.io.mosaic import grid_offset
    from cdtools.io.pair import load_pair

    if change.crs is None:
        raise GridError(
            f"{change.path.name} has no CRS; --classifier needs the georeferenced change map "
            "that `cdtools predict` wrote from these dates."
        )
    t = change.transform
    for grid in ("intersection", "before", "after", "union"):
        pair = load_pair(before, after, bands=bands, grid=grid, resolution=abs(t.a))
        offset = grid_offset(change.crs, t, pair.rio.crs, pair.rio.transform())
        if offset is None or min(offset) < 0:
            continue
        row, col = offset
        if row + change.height > pair.sizes["y"] or col + change.width > pair.sizes["x"]:
            continue
        return pair.isel(y=slice(row, row + change.height), x=slice(col, col + change.width))
    raise GridError(
        f"{change.path.name} ({change.crs}, {change.width} x {change.height} pixels of "
        f"{abs(t.a):g}) is on none of the grids load_pair makes from --before and --after; "
        "pass the dates the map was predicted from."
    )


def check_grid(attrs: dict[str, Any], shape: tuple[int, ...], transform: Affine, what: str) -> None:
    """Raise a GridError unless ``shape`` and ``transform`` are the regions' grid."""
    if "shape" not in attrs or "transform" not in attrs:
        return  # a table made by hand: trust it
    size = abs(transform.a) or 1.0
    same = tuple(attrs["shape"]) == tuple(shape) and np.allclose(
        attrs["transform"], tuple(transform)[:6], rtol=0, atol=1e-6 * size
    )
    if not same:
        raise GridError(
            f"the {what} ({shape[0]} x {shape[1]} pixels, transform {tuple(transform)[:6]}) is "
            f"not on the regions' grid ({attrs['shape'][0]} x {attrs['shape'][1]} pixels, "
            f"transform {attrs['transform']}); load it on the change map's grid (load_pair "
            "with the grid= and resolution= the map was predicted with)."
        )


def write_change_map(
    prob: Any,
    path: str | Path,
    *,
    output: str,
    threshold: float,
    overwrite: bool,
) -> None:
    """Write a float change probability as ``cdtools predict`` does: uint8 x 255, or 0/1
    with ``output="mask"``; 255 is nodata in both."""
    from cdtools.io.cog import write_raster

    coded = prob.copy(data=encode_probability(prob.values)).chunk()
    coded = coded.assign_attrs(long_name=LONG_NAMES["uint8"], threshold=threshold)
    coded = coded.rio.write_nodata(NODATA)
    if output == "mask":
        coded = threshold_change(coded, threshold)
    write_raster(coded, path, overwrite=overwrite, progress=False)
