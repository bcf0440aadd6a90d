"""Figures: chip pairs with their change masks, scenes with polygons, chip indexes.

matplotlib is imported inside each function so that ``import cdtools`` stays quick.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cdtools.chips.labels import CHANGE, IGNORE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CHANGE_RGBA = (1.0, 0.15, 0.1, 0.55)  # change overlaid in translucent red
IGNORE_RGBA = (0.5, 0.5, 0.5, 0.55)  # ignored pixels in grey


def rgb_bands(rgb: Sequence[int], count: int) -> list[int]:
    """The band indices shown as red, green and blue; the first band for missing ones."""
    return [b if b < count else 0 for b in rgb]


def to_rgb(
    image: np.ndarray,
    *,
    rgb: Sequence[int] = (0, 1, 2),
    limits: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``(bands, h, w)`` to a displayable ``(h, w, 3)`` float image in [0, 1].

    Bands ``rgb`` are shown (the first band three times for single-band images), each
    stretched between its 2nd and 98th percentile, or between ``limits`` when given.
    """
    picked = image[rgb_bands(rgb, image.shape[0])].astype(np.float32)
    low, high = limits if limits is not None else stretch_limits([picked])
    return np.clip((picked - low) / np.maximum(high - low, 1e-6), 0, 1).transpose(1, 2, 0)


def stretch_limits(images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """2nd and 98th percentile per band over several ``(bands, h, w)`` images together.

    Stretching two dates with the same limits keeps their real brightness difference.
    """
    stacked = np.concatenate([i.reshape(i.shape[0], -1) for i in images], axis=1)
    low, high = np.percentile(stacked, [2, 98], axis=1)
    return low[:, None, None], high[:, None, None]


def mask_overlay(mask: np.ndarray) -> np.ndarray:
    """An RGBA ``(h, w, 4)`` layer: change in red, ignored pixels in grey, else clear."""
    layer = np.zeros((*mask.shape, 4), dtype=np.float32)
    layer[mask == CHANGE] = CHANGE_RGBA
    layer[mask == IGNORE] = IGNORE_RGBA
    return layer


def pair_rgb(
    before: np.ndarray, after: np.ndarray, rgb: Sequence[int] = (0, 1, 2)
) -> tuple[np.ndarray, np.ndarray]:
    """Both dates as displayable RGB, stretched with the same limits (see stretch_limits)."""
    picked = rgb_bands(rgb, before.shape[0])
    limits = stretch_limits([before[picked], after[picked]])
    return to_rgb(before, rgb=rgb, limits=limits), to_rgb(after, rgb=rgb, limits=limits)


def show_pairs(
    befores: Sequence[np.ndarray],
    afters: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    probs: Sequence[np.ndarray] | None = None,
    threshold: float = 0.5,
    rgb: Sequence[int] = (0, 1, 2),
    size: float = 3.0,
) -> Figure:
    """A row per chip: before | after | change mask, and with ``probs`` a fourth column,
    the prediction (change found red, false alarms yellow, change missed cyan).

    Example:
        >>> fig = show_pairs([before], [after], [mask])  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    rows, columns = len(masks), 3 if probs is None else 4
    fig, axes = plt.subplots(
        rows, columns, figsize=(columns * size, rows * size + 0.4), squeeze=False
    )
    for r, (before, after, mask) in enumerate(zip(befores, afters, masks, strict=True)):
        before_rgb, after_rgb = pair_rgb(before, after, rgb)
        axes[r, 0].imshow(before_rgb)
        for ax in axes[r, 1:]:
            ax.imshow(after_rgb)
        axes[r, 2].imshow(mask_overlay(mask))
        if probs is not None:
            axes[r, 3].imshow(outcome_overlay(mask, probs[r], threshold))
    titles = (
        ("before", "after", "change mask")
        if probs is None
        else ("before", "after", "truth", "prediction")
    )
    for ax, title in zip(axes[0], titles, strict=True):
        ax.set_title(title)
    for ax in axes.flat:
        ax.set_axis_off()
    if probs is not None:
        legend = [(TP_RGBA, "found"), (FP_RGBA, "false alarm"), (FN_RGBA, "missed")]
        handles = [Patch(color=colour, label=name) for colour, name in legend]
        fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.04 if probs is not None else 0, 1, 1))
    plt.close(fig)
    return fig


def show_scene(
    before: str,
    after: str,
    *,
    polygons: Any = None,
    rgb: Sequence[int] = (0, 1, 2),
    size: float = 5.0,
) -> Figure:
    """Before and after scenes side by side in map coordinates, change polygons outlined.

    ``polygons`` is a GeoDataFrame (or a file path) in any CRS; it is drawn in the scene's.
    """
    import matplotlib.pyplot as plt

    from cdtools.io.raster import open_raster

    with open_raster(before) as src_b, open_raster(after) as src_a:
        images = [src_b.read(), src_a.read()]
        bounds, crs = src_b.bounds, src_b.crs
    extent = (bounds.left, bounds.right, bounds.bottom, bounds.top)
    frame = _as_frame(polygons, crs)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size), sharex=True, sharey=True)
    for ax, image, title in zip(axes, pair_rgb(*images, rgb), ("before", "after"), strict=True):
        ax.imshow(image, extent=extent)
        if frame is not None:
            frame.boundary.plot(ax=ax, color="yellow", linewidth=0.8)
        ax.set_title(title)
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    plt.close(fig)
    return fig


def show_chip_index(index: Any, *, scene: str | None = None, size: float = 6.0) -> Figure:
    """Chip footprints from chips.geojson, coloured by their change fraction, over the scene."""
    import matplotlib.pyplot as plt

    frame = _as_frame(index, None)
    fig, ax = plt.subplots(figsize=(size, size))
    if scene is not None:
        from cdtools.io.raster import open_raster

        with open_raster(scene) as src:
            image, bounds = src.read(), src.bounds
        ax.imshow(to_rgb(image), extent=(bounds.left, bounds.right, bounds.bottom, bounds.top))
    frame.plot(
        ax=ax,
        column="change_fraction",
        cmap="magma",
        alpha=0.35,
        edgecolor="white",
        linewidth=0.3,
        legend=True,
        legend_kwds={"label": "change fraction", "shrink": 0.7},
    )
    ax.set_title(f"{len(frame)} chips")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _as_frame(frame: Any, crs: Any) -> Any:
    if frame is None:
        return None
    import geopandas as gpd

    if not isinstance(frame, gpd.GeoDataFrame):
        frame = gpd.read_file(frame)
    return frame.to_crs(crs) if crs is not None and frame.crs is not None else frame


TP_RGBA = (1.0, 0.15, 0.1, 0.6)  # change found: red
FP_RGBA = (1.0, 0.85, 0.0, 0.7)  # false alarm: yellow
FN_RGBA = (0.0, 0.75, 1.0, 0.7)  # change missed: cyan


def outcome_overlay(mask: np.ndarray, prob: np.ndarray, threshold: float) -> np.ndarray:
    """RGBA layer of a prediction against the truth: TP red, FP yellow, FN cyan."""
    pred = prob > threshold
    layer = np.zeros((*mask.shape, 4), dtype=np.float32)
    layer[pred & (mask == CHANGE)] = TP_RGBA
    layer[pred & (mask == 0)] = FP_RGBA
    layer[~pred & (mask == CHANGE)] = FN_RGBA
    return layer


def show_prediction(
    before: np.ndarray,
    after: np.ndarray,
    prob: np.ndarray,
    *,
    threshold: float = 0.5,
    rgb: Sequence[int] = (0, 1, 2),
    size: float = 4.0,
) -> Figure:
    """before | after | change probability (outlined where above ``threshold``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(3 * size, size))
    for ax, image in zip(axes, pair_rgb(before, after, rgb), strict=False):
        ax.imshow(image)
    shown = axes[2].imshow(prob, cmap="magma", vmin=0, vmax=1)
    axes[2].contour(prob > threshold, levels=[0.5], colors="cyan", linewidths=0.6)
    fig.colorbar(shown, ax=axes[2], fraction=0.046, label="change probability")
    for ax, title in zip(axes, ("before", "after", "change"), strict=True):
        ax.set_title(title)
        ax.set_axis_off()
    fig.tight_layout()
    plt.close(fig)
    return fig


def display(fig: Any) -> None:
    """Show a figure in Jupyter (figures made here are closed, so they do not show twice)."""
    try:
        from IPython.display import display as ipython_display
    except ImportError:  # plain Python: the caller saves the figure instead
        return
    ipython_display(fig)
