"""SpotCheckViewer: step through change regions, largest first, and what each became."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from cdtools.regions.spotcheck import SpotCheck
from cdtools.widgets.pager import PagedPanel, Pager
from cdtools.widgets.region_text import class_lookup, transition_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class SpotCheckViewer(PagedPanel):
    """One region per page, largest first: before | change probability | after with the
    region outlined (as :func:`cdtools.visual_spot_check` draws), and a line with its id,
    area and, when known, land cover before → after.

    Args:
        pair: ``(time, band, y, x)`` DataArray from :func:`cdtools.load_pair` on the change
            map's grid.
        prob: the change map the regions came from (computed, or a GeoTIFF path); it is
            read once.
        regions: the table of :func:`cdtools.predictions_to_regions` (with columns
            ``class_before``/``class_after`` when already merged with classes).
        size: patch size in pixels.
        rgb: the bands shown as red, green and blue.
        classes: the table of :func:`cdtools.classify_patches` (``id``, ``class_before``,
            ``confidence_before``, ``class_after``, ``confidence_after``), joined on ``id``.

    Example:
        >>> viewer = SpotCheckViewer(pair, "change.tif", regions, classes=table)  # doctest: +SKIP
        >>> viewer  # last in a cell: shows itself  # doctest: +SKIP
        >>> viewer.show(3)  # the fourth largest region  # doctest: +SKIP
    """

    def __init__(
        self,
        pair: Any,
        prob: Any,
        regions: Any,
        *,
        size: int = 256,
        rgb: Sequence[int] = (0, 1, 2),
        classes: Any = None,
    ) -> None:
        self.checks = SpotCheck(pair, prob, regions, size=size, rgb=rgb)
        self._classes = class_lookup(regions if classes is None else classes, classes is None)
        count = len(self.checks)
        self.text = widgets.HTML()
        self.slider = widgets.IntSlider(
            value=1,
            min=1,
            max=max(count, 1),
            description="region",
            disabled=count == 0,
            continuous_update=False,
        )
        self.slider.observe(lambda change: self._jump(change["new"] - 1), names="value")
        self.pager = Pager(self._draw, count, name="region", cache=True, on_show=self._update)
        self.widget = widgets.VBox([self.pager.controls, self.slider, self.text, self.pager.image])
        self.widget.add_class("cdtools-spot-check")  # a handle for pages and tests

    @property
    def regions(self) -> Any:
        """The regions in the order shown, largest first."""
        return self.checks.regions

    def _jump(self, i: int) -> None:
        if i != self.page:
            self.show(i)

    def _draw(self, i: int) -> Figure:
        return self.checks.figure([i] if len(self.checks) else [])

    def _update(self, i: int) -> None:
        """The text line and slider of region ``i``."""
        if not len(self.checks):
            self.text.value = "no change regions"
            return
        region = self.checks.regions.iloc[i]
        area = f"{region[self.checks.area]:,.0f} {self.checks.unit}"
        parts = [f"<b>region id {int(region['id'])}</b>", f"area {area}"]
        found = self._classes.get(int(region["id"]))
        if found is not None:
            parts.append(transition_text(found))
        self.text.value = " · ".join(parts)
        self.slider.value = i + 1  # its observer returns at once: the page is already i
