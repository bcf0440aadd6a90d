"""SplitMap: before | after on one map with a swipe, the change on top, regions to click."""

from __future__ import annotations

from typing import Any

import numpy as np

from cdtools.errors import ParameterError
from cdtools.widgets.panel import Panel
from cdtools.widgets.region_text import class_lookup, transition_text
from cdtools.widgets.web_image import (
    MAX_SIZE,
    change_on,
    change_url,
    rgb_url,
    shared_limits,
    web_image,
    web_map,
)

PANES = {"before": {"zIndex": 250}, "after": {"zIndex": 251}, "change": {"zIndex": 390}}
"""Own panes per layer: the swipe clips panes, and vectors (overlayPane, 400) stay on top."""
MAX_MARKERS = 200  # regions with a clickable marker, largest first
REGION_STYLE = {"color": "#00e5ff", "weight": 2, "fill": False}
PARCEL_CMAP = "YlOrRd"  # parcels filled by share changed: pale yellow (none) to dark red (all)
PARCEL_LEGEND = (0.0, 0.25, 0.5, 0.75, 1.0)


class SplitMap(Panel):
    """An ipyleaflet map: swipe between the two dates, change overlay, region outlines.

    Everything is rendered here (no tile server, no internet): each date and the change
    map are warped to Web Mercator at up to ``max_size`` pixels and sent as images. The
    change is drawn where its probability reaches the threshold slider's value; the
    opacity slider fades it. Regions (from :func:`cdtools.regions_to_polygons` or
    :func:`cdtools.predictions_to_regions`) get outlines and a marker whose popup gives
    the area and, when known, the land-cover classes before and after.

    Args:
        before, after: GeoTIFF paths or georeferenced ``(band, y, x)`` DataArrays (for a
            :func:`cdtools.load_pair` result: ``pair.sel(time="before")``).
        change: the change map (path, DataArray; uint8 probability x 255 or float [0, 1]).
        regions: a regions table or GeoDataFrame of region polygons.
        classes: a :func:`cdtools.classify_patches` table, joined to ``regions`` on ``id``.
        parcels: parcels from :func:`cdtools.join_parcels`, filled by their share
            changed (see :meth:`add_parcels`).
        threshold: the first threshold (default: the map's stored one, else 0.5).
        rgb: the bands shown as red, green and blue.
        basemap: also add OpenStreetMap underneath (needs the internet).
        max_size: pixels on the long side of each image sent to the browser.

    Example:
        >>> SplitMap("before.tif", "after.tif", change="change.tif")  # doctest: +SKIP
    """

    def __init__(
        self,
        before: Any,
        after: Any,
        *,
        change: Any = None,
        regions: Any = None,
        classes: Any = None,
        parcels: Any = None,
        threshold: float | None = None,
        rgb: tuple[int, int, int] = (0, 1, 2),
        basemap: bool = False,
        max_size: int = MAX_SIZE,
    ) -> None:
        import ipyleaflet
        import ipywidgets

        self.before, self.after = (
            web_image(before, max_size=max_size),
            web_image(after, max_size=max_size),
        )
        limits = shared_limits([self.before, self.after], rgb)
        self.layers = {
            name: ipyleaflet.ImageOverlay(
                url=rgb_url(image, rgb=rgb, limits=limits),
                bounds=image.bounds,
                name=name,
                pane=name,
            )
            for name, image in (("before", self.before), ("after", self.after))
        }
        self.map = web_map(self.before, panes=PANES)
        if basemap:
            self.map.add(ipyleaflet.basemap_to_tiles(ipyleaflet.basemaps.OpenStreetMap.Mapnik))
        for layer in self.layers.values():
            self.map.add(layer)
        self.map.add(
            ipyleaflet.SplitMapControl(
                left_layer=self.layers["before"], right_layer=self.layers["after"]
            )
        )
        controls: list[Any] = []
        self.change: np.ndarray | None = None
        if change is not None:
            controls = self._add_change(change, threshold)
        if regions is not None:
            self._add_regions(
                regions, class_lookup(regions if classes is None else classes, classes is None)
            )
        if parcels is not None:
            self.add_parcels(parcels)
        self.map.add(ipyleaflet.LayersControl(position="topright"))
        self.widget = ipywidgets.VBox([self.map, ipywidgets.HBox(controls)])
        self.widget.add_class("cdtools-split-map")  # a handle for pages and tests

    def _add_change(self, change: Any, threshold: float | None) -> list[Any]:
        import ipyleaflet
        import ipywidgets

        from cdtools.scene.changemap import read_change_map

        decoded = read_change_map(change)
        self.change = change_on(decoded, self.before)
        first = threshold if threshold is not None else decoded.threshold or 0.5
        self.layers["change"] = ipyleaflet.ImageOverlay(
            url=change_url(self.change, first), bounds=self.before.bounds,
            name="change", pane="change", opacity=0.7,
        )  # fmt: skip
        self.map.add(self.layers["change"])
        self.opacity = ipywidgets.FloatSlider(0.7, min=0, max=1, step=0.05, description="opacity")
        self.threshold = ipywidgets.FloatSlider(
            first, min=0.05, max=0.95, step=0.05, description="threshold"
        )
        self.summary = ipywidgets.HTML()
        self.opacity.observe(lambda event: self.set_opacity(event["new"]), names="value")
        self.threshold.observe(lambda event: self.set_threshold(event["new"]), names="value")
        self.set_threshold(first)
        return [self.threshold, self.opacity, self.summary]

    def set_threshold(self, threshold: float) -> None:
        """Draw the change where its probability is at least ``threshold``."""
        if self.change is None:
            raise ParameterError("this SplitMap has no change map; pass change=... to show one.")
        prob = self.change
        self.layers["change"].url = change_url(prob, threshold)
        valid = np.isfinite(prob)
        share = float((prob[valid] >= threshold).mean()) if valid.any() else 0.0
        self.summary.value = f"changed: {share:.1%} of the mapped area at threshold {threshold:.2f}"

    def set_opacity(self, opacity: float) -> None:
        """Fade the change overlay (0: hidden, 1: opaque)."""
        if "change" in self.layers:
            self.layers["change"].opacity = float(opacity)

    def _add_regions(self, regions: Any, classes: dict[int, dict[str, Any]]) -> None:
        import ipyleaflet
        import ipywidgets

        outlines = _polygons_in_degrees(regions)
        if outlines is not None:
            self.layers["regions"] = ipyleaflet.GeoJSON(
                data=outlines, style=REGION_STYLE, name="regions"
            )
            self.map.add(self.layers["regions"])
        area = "area_m2" if "area_m2" in regions and regions["area_m2"].notna().all() else "area_px"
        top = regions.sort_values(area, ascending=False, kind="stable").head(MAX_MARKERS)
        self.markers = [
            ipyleaflet.CircleMarker(
                location=(float(row["lat"]), float(row["lon"])), radius=6, weight=2,
                color="#00e5ff", fill_opacity=0.3,
                popup=ipywidgets.HTML(region_popup(row, area, classes)),
            )
            for _, row in top.iterrows()
            if np.isfinite(row.get("lat", np.nan)) and np.isfinite(row.get("lon", np.nan))
        ]  # fmt: skip
        self.layers["markers"] = ipyleaflet.LayerGroup(layers=self.markers, name="region markers")
        self.map.add(self.layers["markers"])

    def add_parcels(self, parcels: Any, *, column: str = "share_changed") -> Any:
        """Draw parcels filled by ``column`` (0-1; default: :func:`cdtools.join_parcels`'
        share changed), pale yellow at 0 to dark red at 1, with a legend; returns the layer.

        Example:
            >>> sm.add_parcels(join_parcels(regions, "fields.gpkg"))  # doctest: +SKIP
        """
        import ipyleaflet
        from matplotlib import colormaps
        from matplotlib.colors import to_hex

        if column not in getattr(parcels, "columns", ()) or getattr(parcels, "crs", None) is None:
            raise ParameterError(
                f"parcels must be a GeoDataFrame with a CRS and a {column!r} column; pass "
                "join_parcels(regions, parcels)."
            )
        colours = colormaps[PARCEL_CMAP]
        shares = np.clip(np.nan_to_num(parcels[column].to_numpy(dtype=float)), 0, 1)
        keep = [c for c in ("id", "parcel_area_m2", "changed_m2") if c in parcels.columns]
        frame = parcels[[*keep, "geometry"]].assign(**{column: shares}).to_crs("EPSG:4326")
        data = frame.__geo_interface__
        self.layers["parcels"] = ipyleaflet.GeoJSON(
            data=data, name=f"parcels ({column.replace('_', ' ')})",
            style={"color": "#444444", "weight": 1, "fillOpacity": 0.55},
            style_callback=lambda feature: {
                "fillColor": to_hex(colours(float(feature["properties"][column])))
            },
        )  # fmt: skip
        self.map.add(self.layers["parcels"])
        legend = {f"{v:.0%}": to_hex(colours(v)) for v in PARCEL_LEGEND}
        self.parcel_legend = ipyleaflet.LegendControl(
            legend, title=column.replace("_", " "), position="bottomright"
        )
        self.map.add(self.parcel_legend)
        return self.layers["parcels"]


def region_popup(row: Any, area: str, classes: dict[int, dict[str, Any]]) -> str:
    """HTML for one region: id, area, and "Forest → Residential" when classes are known."""
    unit = "m²" if area == "area_m2" else "px"
    text = f"<b>region {int(row['id'])}</b><br>{float(row[area]):,.0f} {unit}"
    found = classes.get(int(row["id"]))
    return text if found is None else f"{text}<br>{transition_text(found)}"


def _polygons_in_degrees(regions: Any) -> dict[str, Any] | None:
    """Region polygons as GeoJSON in EPSG:4326, or None for a table of points."""
    geometry = getattr(regions, "geometry", None)
    if (
        geometry is None
        or regions.crs is None
        or not geometry.geom_type.isin(["Polygon", "MultiPolygon"]).any()
    ):
        return None
    keep = [c for c in ("id", "area_m2") if c in regions.columns]
    return regions[[*keep, "geometry"]].to_crs("EPSG:4326").__geo_interface__
