"""TimeSlider: one map over many dates of a place, a date slider, the change since the last."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cdtools.errors import ParameterError
from cdtools.widgets.panel import Panel
from cdtools.widgets.web_image import (
    MAX_SIZE,
    change_on,
    change_url,
    rgb_url,
    shared_limits,
    web_image,
    web_map,
)


class TimeSlider(Panel):
    """A map showing one date at a time, picked with a slider (or played as an animation).

    All dates are warped to Web Mercator at up to ``max_size`` pixels and stretched with
    one shared 2-98 % stretch, so brightness stays comparable from date to date. With
    ``changes`` (one change map per pair of consecutive dates), the change from the
    previous date is drawn on top where its probability reaches ``threshold``.

    Args:
        scenes: a ``(time, band, y, x)`` DataArray (:func:`cdtools.load_series`), a
            :func:`cdtools.make_time_series` result, a mapping of date to raster, or a
            sequence of ``(date, raster)`` pairs; a raster is a GeoTIFF path or a
            georeferenced ``(band, y, x)`` DataArray.
        changes: ``len(scenes) - 1`` change maps (paths or DataArrays), the k-th between
            dates k and k + 1, a ``(step, y, x)`` DataArray of them
            (:func:`cdtools.detect_series_change`), or None.
        threshold: probability at which a pixel is drawn as changed (default: the
            first map's stored threshold, else 0.5).
        rgb: the bands shown as red, green and blue.
        max_size: pixels on the long side of each image sent to the browser.

    Example:
        >>> TimeSlider(load_series("naip/"))  # doctest: +SKIP
    """

    def __init__(
        self,
        scenes: Any,
        *,
        changes: Sequence[Any] | Any = None,
        threshold: float | None = None,
        rgb: tuple[int, int, int] = (0, 1, 2),
        max_size: int = MAX_SIZE,
    ) -> None:
        import ipyleaflet
        import ipywidgets

        from cdtools.scene.changemap import read_change_map

        self.dates, rasters = _dated(scenes)
        if changes is not None and "step" in getattr(changes, "dims", ()):
            changes = [changes.isel(step=k) for k in range(changes.sizes["step"])]
        if changes is not None and len(changes) != len(self.dates) - 1:
            raise ParameterError(
                f"changes has {len(changes)} maps for {len(self.dates)} dates; pass one per "
                f"pair of consecutive dates ({len(self.dates) - 1}), or None."
            )
        images = [web_image(r, max_size=max_size) for r in rasters]
        limits = shared_limits(images, rgb)
        self.urls = [rgb_url(image, rgb=rgb, limits=limits) for image in images]
        self.bounds = [image.bounds for image in images]  # dates need not share a grid
        self.change_urls: list[str | None] = [None]
        for change in changes or []:
            prob = read_change_map(change)
            if threshold is None:
                threshold = prob.threshold if prob.threshold is not None else 0.5
            self.change_urls.append(change_url(change_on(prob, images[0]), threshold))
        self.map = web_map(images[0])
        self.image = ipyleaflet.ImageOverlay(url=self.urls[0], bounds=images[0].bounds, name="date")
        self.map.add(self.image)
        self.change = None
        if changes is not None:
            self.change = ipyleaflet.ImageOverlay(
                url=_CLEAR, bounds=images[0].bounds, name="change since previous date", opacity=0.7
            )
            self.map.add(self.change)
            self.map.add(ipyleaflet.LayersControl(position="topright"))
        self.slider = ipywidgets.SelectionSlider(
            options=list(self.dates), description="date", continuous_update=False,
            layout=ipywidgets.Layout(width="60%"),
        )  # fmt: skip
        self.play = ipywidgets.Play(
            min=0, max=len(self.dates) - 1, interval=1200, description="play"
        )
        ipywidgets.jslink((self.play, "value"), (self.slider, "index"))
        self.label = ipywidgets.HTML()
        self.slider.observe(lambda event: self.show(event["new"]), names="index")
        self.widget = ipywidgets.VBox(
            [self.map, ipywidgets.HBox([self.play, self.slider, self.label])]
        )
        self.widget.add_class("cdtools-time-slider")  # a handle for pages and tests
        self.show(0)

    @property
    def index(self) -> int:
        """The position of the date shown."""
        return int(self.slider.index)

    def show(self, index: int) -> None:
        """Show date ``index`` (and the change since the date before, when known)."""
        if not 0 <= index < len(self.dates):
            raise ParameterError(f"date index {index} is outside 0..{len(self.dates) - 1}.")
        with self.image.hold_sync():  # one message: the image never lands on another's place
            self.image.url, self.image.bounds = self.urls[index], self.bounds[index]
        text = f"{self.dates[index]} ({index + 1} of {len(self.dates)})"
        if self.change is not None:
            self.change.url = self.change_urls[index] or _CLEAR
            if index:
                text += f": change since {self.dates[index - 1]} in magenta"
        self.label.value = text
        if self.slider.index != index:
            self.slider.index = index  # moves the slider when called from code


_CLEAR = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
"""A transparent 1 x 1 image: the change layer before the first date."""


def _dated(scenes: Any) -> tuple[tuple[str, ...], list[Any]]:
    """(date labels, rasters) from any of the forms TimeSlider takes."""
    if hasattr(scenes, "dims") and "time" in scenes.dims:
        labels = [_label(t) for t in scenes["time"].values]
        rasters = [scenes.isel(time=i) for i in range(scenes.sizes["time"])]
    elif hasattr(scenes, "dates") and hasattr(scenes, "scenes"):
        labels, rasters = [str(d) for d in scenes.dates], list(scenes.scenes)
    elif isinstance(scenes, Mapping):
        labels, rasters = [str(d) for d in scenes], list(scenes.values())
    elif isinstance(scenes, Sequence) and all(
        isinstance(s, Sequence) and not isinstance(s, str) and len(s) == 2 for s in scenes
    ):
        labels, rasters = [str(d) for d, _ in scenes], [r for _, r in scenes]
    else:
        raise ParameterError(
            "scenes must be a (time, band, y, x) DataArray, a make_time_series result, a mapping "
            f"of date to raster or a list of (date, raster) pairs; got {type(scenes).__name__}."
        )
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ParameterError(f"a time slider needs two or more distinct dates; got {labels}.")
    return tuple(labels), rasters


def _label(time: Any) -> str:
    if isinstance(time, np.datetime64):
        return str(time.astype("datetime64[D]"))
    return str(time)
