"""What each change became: the land cover before and after each region, and the transitions.

:func:`classify_patches` classifies the before and after patches of each region (from
:func:`cdtools.regions.spotcheck.grab_patches`) with a :class:`cdtools.LandCoverClassifier`.
Merged with the regions table on ``id``, :func:`transitions` sums the changed area from
each class to each class, keeping only regions classified confidently on both dates and
large enough, as makepath's workflow did; :func:`plot_transitions` draws the matrix and
:func:`list_transitions` spells it out, largest first.

The module is named ``transition`` so that it does not shadow ``cdtools.transitions``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cdtools.errors import GridError, ParameterError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

COLUMNS = ("id", "class_before", "confidence_before", "class_after", "confidence_after")
"""The columns of :func:`classify_patches`' table."""
_NEEDED = ("class_before", "confidence_before", "class_after", "confidence_after")


def classify_patches(
    patches: Iterable[Any],
    classifier: Any,
    *,
    bands: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    tta: bool = True,
    batch_size: int = 64,
) -> pd.DataFrame:
    """The land-cover class before and after each region, with the classifier's confidence.

    Args:
        patches: ``RegionPatch`` objects from :func:`cdtools.regions.spotcheck.grab_patches` (any
            objects with ``id``, ``before`` and ``after``: ``(bands, h, w)`` arrays in raw
            units, NaN outside the scene).
        classifier: a :class:`cdtools.LandCoverClassifier`.
        bands: 0-based indices of the patches' bands to give the classifier (e.g.
            ``[0, 1, 2]`` for RGB of an RGB+NIR scene); by default all, which must be as
            many as the classifier takes.
        classes: the classes the caller expects (e.g. ``EUROSAT_CLASSES``, to compare
            with land-cover maps); an error if the classifier's differ.
        tta: classify each patch in its 8 flips and quarter turns and average the
            probabilities (see ``LandCoverClassifier.predict``).
        batch_size: patches per forward pass.

    Returns:
        A pandas DataFrame with columns ``id``, ``class_before``, ``confidence_before``,
        ``class_after``, ``confidence_after``, one row per patch, in their order. Class
        columns are categorical over the classifier's classes; a patch with no data at a
        date has no class there and confidence NaN. Patches partly outside the scene are
        classified from what is inside (the rest enters the network as the band means).

    Raises:
        GridError: the patches' bands do not fit the classifier.
        ParameterError: the classifier's classes are not ``classes``; not patches.

    Example:
        >>> patches = grab_patches(pair, regions, size=64)  # doctest: +SKIP
        >>> table = classify_patches(patches, sample_landcover_classifier())  # doctest: +SKIP
        >>> regions.merge(table, on="id")  # doctest: +SKIP
    """
    import pandas as pd

    names = tuple(classifier.classes)
    if classes is not None and tuple(classes) != names:
        raise ParameterError(
            f"the classifier's classes {list(names)} are not the expected {list(classes)}; "
            "use a classifier trained on those classes (or pass classes=None)."
        )
    patches = list(patches)
    for patch in patches:
        if not all(hasattr(patch, a) for a in ("id", "before", "after")):
            raise ParameterError(
                "classify_patches takes RegionPatch objects from "
                "cdtools.regions.spotcheck.grab_patches (with id, before and after), got "
                f"{type(patch).__name__}."
            )
    columns: dict[str, Any] = {"id": np.array([int(p.id) for p in patches], dtype=np.int64)}
    for date in ("before", "after"):
        images = [_pick_bands(np.asarray(getattr(p, date)), bands, classifier) for p in patches]
        index, confidence = _classify(images, classifier, tta=tta, batch_size=batch_size)
        codes = np.where(np.isnan(confidence), -1, index)
        columns[f"class_{date}"] = pd.Categorical.from_codes(codes, categories=list(names))
        columns[f"confidence_{date}"] = confidence
    return pd.DataFrame(columns)[list(COLUMNS)]


def _pick_bands(image: np.ndarray, bands: Sequence[int] | None, classifier: Any) -> np.ndarray:
    spec = classifier.spec
    if image.ndim != 3:
        raise GridError(f"a patch must be (bands, height, width), got shape {image.shape}.")
    if bands is not None:
        bad = [b for b in bands if not 0 <= b < image.shape[0]]
        if bad:
            raise GridError(f"bands {bad} are not in patches of {image.shape[0]} bands.")
        image = image[list(bands)]
    if image.shape[0] != spec.in_channels:
        raise GridError(
            f"the patches have {image.shape[0]} bands but the classifier takes "
            f"{spec.in_channels} ({', '.join(spec.bands)}); pass bands=[...] with the "
            "indices of those bands in the imagery."
        )
    return image.astype(np.float32, copy=False)


def _classify(
    images: list[np.ndarray], classifier: Any, *, tta: bool, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Class index and confidence per image; NaN confidence where an image has no data."""
    index = np.zeros(len(images), dtype=np.int64)
    confidence = np.full(len(images), np.nan)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        if np.isfinite(image).any():
            by_shape.setdefault(image.shape, []).append(i)
    for members in by_shape.values():
        found, prob = classifier.predict(
            np.stack([images[i] for i in members]), tta=tta, batch_size=batch_size
        )
        index[members] = found
        confidence[members] = prob[np.arange(len(members)), found]
    return index, confidence


def transitions(
    table: Any,
    *,
    min_confidence: float = 0.55,
    min_area_m2: float = 0.0,
    area: str = "area_m2",
    classes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A from -> to matrix of changed area: rows the class before, columns the class after.

    Args:
        table: one row per region with its area and both dates' classes and confidences:
            the regions table of :func:`cdtools.regions.table.predictions_to_regions` merged
            with :func:`classify_patches`' output on ``id``.
        min_confidence: keep regions classified with at least this confidence at both dates.
        min_area_m2: keep regions of at least this area.
        area: the column to sum (and to filter with ``min_area_m2``).
        classes: rows and columns, in this order; by default the classes that occur (in
            the classifier's order when the columns are categorical, else sorted).

    Returns:
        A square pandas DataFrame of summed area (index named "before", columns "after");
        ``.attrs`` holds ``regions`` (kept), ``regions_total`` and ``area`` (the column).

    Example:
        >>> matrix = transitions(regions.merge(classes, on="id"))  # doctest: +SKIP
        >>> matrix.loc["Forest", "Residential"]  # doctest: +SKIP
        1234.5
    """
    import pandas as pd

    missing = [c for c in (area, *_NEEDED) if c not in table.columns]
    if missing:
        raise ParameterError(
            f"the table lacks columns {missing} (it has {list(table.columns)}); merge the "
            "regions table with classify_patches' output: regions.merge(classes, on='id')."
        )
    if not 0.0 <= min_confidence <= 1.0:
        raise ParameterError(f"min_confidence must be in [0, 1], got {min_confidence}.")
    keep = (
        (table["confidence_before"] >= min_confidence)
        & (table["confidence_after"] >= min_confidence)
        & (table[area] >= min_area_m2)
        & table["class_before"].notna()
        & table["class_after"].notna()
    )
    kept = table.loc[keep, ["class_before", "class_after", area]]
    if classes is None:
        present = set(kept["class_before"]) | set(kept["class_after"])
        column = table["class_before"]
        order = list(column.cat.categories) if isinstance(column.dtype, pd.CategoricalDtype) else []
        classes = [c for c in order if c in present] + sorted(present - set(order))
    labels = [str(c) for c in classes]
    sums = (
        kept.astype({"class_before": str, "class_after": str})
        .groupby(["class_before", "class_after"])[area]
        .sum()
    )
    matrix = pd.DataFrame(0.0, index=pd.Index(labels, name="before"), columns=labels)
    for (before, after), value in sums.items():
        if before in matrix.index and after in matrix.columns:
            matrix.loc[before, after] = float(value)
    matrix.columns.name = "after"
    matrix.attrs.update(regions=int(keep.sum()), regions_total=len(table), area=area)
    return matrix


def list_transitions(matrix: Any, *, top: int | None = None, unit: str | None = None) -> list[str]:
    """The transitions as lines, largest area first: "Forest -> Residential: 1,234 m2".

    Args:
        matrix: from :func:`transitions`.
        top: at most this many lines.
        unit: the area's unit; default "m2", or "px" when the matrix sums pixels.

    Example:
        >>> list_transitions(matrix, top=1)  # doctest: +SKIP
        ['Forest -> Residential: 1,234 m2']
    """
    if unit is None:
        unit = "m2" if matrix.attrs.get("area", "area_m2").endswith("m2") else "px"
    cells = [
        (-float(value), str(before), str(after))
        for before, row in matrix.iterrows()
        for after, value in row.items()
        if value > 0
    ]
    cells.sort()
    return [f"{b} -> {a}: {-v:,.0f} {unit}" for v, b, a in cells[:top]]


def plot_transitions(
    matrix: Any, *, title: str | None = None, cmap: str = "YlOrRd", size: float = 6.0
) -> Figure:
    """A heatmap of the transition matrix with each cell's area written in it.

    Example:
        >>> fig = plot_transitions(transitions(table))  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    values = matrix.to_numpy(dtype=float)
    unit = "m²" if matrix.attrs.get("area", "area_m2").endswith("m2") else "pixels"
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    if values.size == 0:
        ax.text(0.5, 0.5, "no transitions", ha="center", va="center")
        ax.set_axis_off()
    else:
        shown = np.where(values > 0, values, np.nan)
        image = ax.imshow(shown, cmap=cmap, vmin=0)
        fig.colorbar(image, ax=ax, shrink=0.8, label=f"changed area ({unit})")
        peak = np.nanmax(values) if np.any(values > 0) else 1.0
        for (r, c), value in np.ndenumerate(values):
            if value > 0:
                colour = "white" if value > 0.6 * peak else "black"
                ax.text(c, r, f"{value:,.0f}", ha="center", va="center", fontsize=8, color=colour)
        ax.set_xticks(range(values.shape[1]), matrix.columns, rotation=40, ha="right")
        ax.set_yticks(range(values.shape[0]), matrix.index)
        ax.set_xlabel("after")
        ax.set_ylabel("before")
    ax.set_title(title or "What the changed land became")
    fig.tight_layout()
    plt.close(fig)
    return fig
