"""Spot checks: before and after patches around change regions, and a figure to look at them.

:func:`grab_patches` reads only the windows it needs from a (possibly lazy, large) pair;
:func:`visual_spot_check` draws before | change probability | after for the largest
regions with each region outlined. Both take the table of
:func:`cdtools.regions.table.predictions_to_regions` and are re-exported there.
:class:`SpotCheck` (the regions in that order, drawn one or several at a time) is what
both the figure and :class:`cdtools.widgets.SpotCheckViewer` draw with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cdtools.errors import ParameterError
from cdtools.regions.table import label_regions
from cdtools.scene.changemap import check_grid, read_change_map, transform_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BATCH = 32  # windows computed together from a lazy pair: each chunk is read once per batch


@dataclass(frozen=True)
class RegionPatch:
    """Before and after ``(bands, size, size)`` float32 patches centred on one region.

    ``row`` and ``col`` are the patch's top-left pixel on the pair's grid (negative, or
    beyond the scene, at its borders: those pixels are NaN); ``centroid`` is the region's
    centroid ``(x, y)`` in map coordinates. Values are in the pair's own units.
    """

    id: int
    before: np.ndarray
    after: np.ndarray
    row: int
    col: int
    centroid: tuple[float, float]


def grab_patches(pair: Any, regions: Any, *, size: int = 256) -> list[RegionPatch]:
    """Before and after patches of ``size`` pixels centred on each region's centroid.

    ``pair`` is a ``(time, band, y, x)`` DataArray from :func:`cdtools.load_pair` on the
    change map's grid (a :class:`~cdtools.errors.GridError` says when it is not); only the
    windows needed are read. Patches at the scene's borders are padded with NaN.

    Example:
        >>> patches = grab_patches(pair, regions.head(10), size=128)  # doctest: +SKIP
        >>> patches[0].before.shape  # doctest: +SKIP
        (3, 128, 128)
    """
    if size < 1:
        raise ParameterError(f"size must be a positive number of pixels, got {size}.")
    if tuple(pair.dims) != ("time", "band", "y", "x") or pair.sizes["time"] != 2:
        raise ParameterError(
            f"pair must be a (time=2, band, y, x) DataArray from load_pair, got {dict(pair.sizes)}."
        )

    check_grid(regions.attrs, (pair.sizes["y"], pair.sizes["x"]), transform_of(pair), "pair")
    corners = [_corner(r, c, size) for r, c in zip(regions["row"], regions["col"], strict=True)]
    patches = _windows(pair.data, corners, size)
    return [
        RegionPatch(int(i), patch[0], patch[1], r0, c0, (float(x), float(y)))
        for i, x, y, (r0, c0), patch in zip(
            regions["id"], regions["centroid_x"], regions["centroid_y"], corners, patches,
            strict=True,
        )
    ]  # fmt: skip


def visual_spot_check(
    pair: Any,
    prob: Any,
    regions: Any,
    *,
    n: int = 4,
    size: int = 256,
    rgb: Sequence[int] = (0, 1, 2),
) -> Figure:
    """A figure with a row per region, largest first: before | change probability | after.

    The region (as :func:`~cdtools.regions.table.predictions_to_regions` found it, with the
    options stored in ``regions.attrs``) is outlined in cyan on all three. ``prob`` is the
    change map the regions came from; pass it computed (or as a path), not as a lazy
    ``predict_scene`` result, which would predict the scene again.

    Example:
        >>> fig = visual_spot_check(pair, "change.tif", regions, n=4)  # doctest: +SKIP
        >>> fig.savefig("spot_check.png")  # doctest: +SKIP
    """
    shown = len(regions.head(n))  # as many as DataFrame.head gives
    checks = SpotCheck(pair, prob, regions if shown else regions.iloc[:0], size=size, rgb=rgb)
    return checks.figure(range(shown))


class SpotCheck:
    """Regions largest first, ready to draw: the change map is read and labelled once.

    ``regions`` are sorted by ``area_m2`` (``area_px`` when ``regions.attrs["units"]`` is
    "px"), then by id, into :attr:`regions`. :func:`visual_spot_check` draws the first
    ``n`` of them in one figure, :class:`cdtools.widgets.SpotCheckViewer` one per page.

    Example:
        >>> SpotCheck(pair, "change.tif", regions).figure([0])  # doctest: +SKIP
    """

    def __init__(
        self, pair: Any, prob: Any, regions: Any, *, size: int = 256, rgb: Sequence[int] = (0, 1, 2)
    ) -> None:
        self.area = "area_m2" if regions.attrs.get("units", "m2") == "m2" else "area_px"
        self.unit = "m²" if self.area == "area_m2" else "px"
        self.regions = regions.sort_values(
            [self.area, "id"], ascending=[False, True], kind="stable"
        )
        self.pair, self.size, self.rgb = pair, size, tuple(rgb)
        self.change = self._ids = None
        if not self.regions.empty:  # nothing to draw: the change map is not read
            self.change = read_change_map(prob)
            check_grid(regions.attrs, self.change.prob.shape, self.change.transform, "change map")
            self._ids = label_regions(self.change, regions.attrs).astype(np.float32)

    def __len__(self) -> int:
        return len(self.regions)

    def figure(self, positions: Iterable[int]) -> Figure:
        """A row per region at ``positions`` (0: the largest): before | change probability |
        after, or a "no change regions" note when there are none."""
        import matplotlib.pyplot as plt

        top = self.regions.iloc[list(positions)]
        if top.empty:
            fig, ax = plt.subplots(figsize=(4, 1))
            ax.text(0.5, 0.5, "no change regions", ha="center", va="center")
            ax.set_axis_off()
            plt.close(fig)
            return fig
        patches = grab_patches(self.pair, top, size=self.size)
        corners = [(p.row, p.col) for p in patches]
        probs = _windows(self.change.prob, corners, self.size)
        ids = _windows(self._ids, corners, self.size)
        fig, axes = plt.subplots(len(top), 3, figsize=(9, 3 * len(top)), squeeze=False)
        for ax, patch, near, found, extent in zip(
            axes, patches, probs, ids, top[self.area], strict=True
        ):
            title = f"region {patch.id} ({extent:,.0f} {self.unit}): before"
            _draw_region(ax, patch, near, found, title=title, rgb=self.rgb)
        fig.tight_layout()
        plt.close(fig)
        return fig


def _draw_region(
    ax: Sequence[Any],
    patch: RegionPatch,
    prob: np.ndarray,
    ids: np.ndarray,
    *,
    title: str,
    rgb: Sequence[int],
) -> None:
    """before | change probability | after of one region on three axes, outlined in cyan."""
    import matplotlib.pyplot as plt

    from cdtools.plots import rgb_bands, stretch_limits, to_rgb

    colours = plt.get_cmap("magma").with_extremes(bad="black")  # no data: black, as the images
    picked = rgb_bands(rgb, patch.before.shape[0])
    both = np.concatenate([patch.before[picked], patch.after[picked]], axis=2)
    inside = both[:, np.isfinite(both).all(axis=0)][:, None, :]  # limits from real pixels
    limits = stretch_limits([inside]) if inside.size else None
    for column, image in ((0, patch.before), (2, patch.after)):
        ax[column].imshow(np.nan_to_num(to_rgb(image, rgb=rgb, limits=limits)))
    ax[1].imshow(prob, cmap=colours, vmin=0, vmax=1)
    for a in ax:
        a.contour(ids == patch.id, levels=[0.5], colors="cyan", linewidths=0.8)
        a.set_axis_off()
    ax[0].set_title(title, fontsize=9)
    ax[1].set_title("change probability", fontsize=9)
    ax[2].set_title("after", fontsize=9)


def _corner(row: float, col: float, size: int) -> tuple[int, int]:
    """Top-left pixel of the ``size`` window whose centre is nearest ``(row, col)``."""
    return int(np.floor(row - (size - 1) / 2 + 0.5)), int(np.floor(col - (size - 1) / 2 + 0.5))


def _windows(data: Any, corners: list[tuple[int, int]], size: int) -> list[np.ndarray]:
    """``size`` x ``size`` float32 windows of the last two axes of ``data``, NaN outside.

    Windows of a dask array are computed :data:`BATCH` at a time, so each chunk they
    share is read once per batch.
    """
    height, width = data.shape[-2:]
    lazy, places = [], []
    for r0, c0 in corners:
        top, left = min(max(r0, 0), height), min(max(c0, 0), width)
        bottom, right = max(min(r0 + size, height), top), max(min(c0 + size, width), left)
        lazy.append(data[..., top:bottom, left:right])
        places.append((slice(top - r0, bottom - r0), slice(left - c0, right - c0)))
    if lazy and hasattr(lazy[0], "dask"):
        import dask

        lazy = [w for k in range(0, len(lazy), BATCH) for w in dask.compute(*lazy[k : k + BATCH])]
    out = []
    for window, (rows, cols) in zip(lazy, places, strict=True):
        patch = np.full((*data.shape[:-2], size, size), np.nan, dtype=np.float32)
        patch[..., rows, cols] = np.asarray(window)
        out.append(patch)
    return out
