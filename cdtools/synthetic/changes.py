"""Real change between the dates: new buildings and roads, demolition, clearing, ponds.

:func:`apply_changes` edits a copy of the before layout into the after layout and
returns one :class:`Change` per changed object. Every pixel inside a change's polygon
gets a new surface (so the polygons are exactly the change), events keep a few metres
apart, and nothing else is edited: all other differences between the dates are
pseudo-change made by the renderer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from cdtools.synthetic import geometry, palette
from cdtools.synthetic.features import road_markings
from cdtools.synthetic.landcover import Material, is_any
from cdtools.synthetic.layout import Layout

CHANGE_KINDS: tuple[str, ...] = (
    "new_building",
    "new_road",
    "demolition",
    "forest_cleared",
    "forest_built",
    "new_water",
)
"""The ``kind`` values of change polygons."""

# Mean number of events per 1024 x 1024 pixels (512 m square); at least one is tried.
_RATE = {
    "new_building": 7.0,  # clusters of 1-3 houses
    "new_road": 2.0,
    "demolition": 6.0,
    "forest_cleared": 2.5,
    "forest_built": 2.5,
    "new_water": 1.2,
}
_OPEN = (Material.ANNUAL_CROP, Material.PASTURE, Material.HERBACEOUS)
_CLEARABLE = (*_OPEN, Material.FOREST, Material.PERMANENT_CROP)
_TRIES = 40


@dataclass(frozen=True)
class Change:
    """One changed object: its kind and its polygon in pixel coordinates."""

    kind: str
    polygon: BaseGeometry


@dataclass
class _Editor:
    """The after-date rasters being edited, and where change has already been put."""

    material: np.ndarray
    roof: np.ndarray
    height: np.ndarray
    marking: np.ndarray
    taken: np.ndarray
    rng: np.random.Generator
    grid_angle: float
    changes: list[Change]

    @property
    def size(self) -> int:
        return int(self.material.shape[0])

    def random_site(self, materials: tuple[int, ...]) -> tuple[float, float] | None:
        """A random pixel (x, y) on one of ``materials`` that no change has taken yet."""
        for _ in range(_TRIES):
            row, col = self.rng.integers(0, self.size, size=2)
            if is_any(self.material[row, col], materials) and not self.taken[row, col]:
                return float(col) + 0.5, float(row) + 0.5
        return None

    def claim(
        self,
        kind: str,
        polygon: BaseGeometry,
        replaceable: tuple[int, ...],
        *,
        core: tuple[int, ...] | None = None,
        core_share: float = 0.85,
        roofed: bool = False,
    ) -> tuple[tuple[slice, slice], np.ndarray] | None:
        """Take ``polygon`` for a change if all of it may change; returns its pixels.

        Every pixel must be ``replaceable``, unroofed (or, with ``roofed``, is the
        building being demolished), untaken and inside the scene; with ``core``, that
        share of it must be of those materials.
        """
        if not polygon.within(shapely.box(1, 1, self.size - 1, self.size - 1)):
            return None
        window, mask = geometry.footprint(polygon, self.material.shape)
        if window is None or not mask.any():
            return None
        material = self.material[window][mask]
        if not is_any(material, replaceable).all() or self.taken[window][mask].any():
            return None
        if not roofed and (self.roof[window][mask] > 0).any():
            return None
        if core is not None and is_any(material, core).mean() < core_share:
            return None
        margin_window, margin = geometry.footprint(polygon.buffer(8), self.material.shape)
        self.taken[margin_window] |= margin
        self.changes.append(Change(kind, polygon))
        return window, mask

    def build(self, window: tuple[slice, slice], footprint: np.ndarray) -> None:
        """Put a house with a random roof on a claimed footprint."""
        self.roof[window][footprint] = self.rng.choice(palette.HOUSE_ROOFS)
        self.height[window][footprint] = self.rng.integers(10, 17)

    def house(self, centre: tuple[float, float], angle: float) -> BaseGeometry:
        """A house footprint 9-20 m by 9-15 m."""
        length, depth = self.rng.uniform(20, 40), self.rng.uniform(18, 30)
        box = np.array([-length / 2, -depth / 2, length / 2, depth / 2])
        return geometry.rectangles(box, centre=centre, angle=angle)[0]


def apply_changes(before: Layout, rng: np.random.Generator) -> tuple[Layout, tuple[Change, ...]]:
    """Make the after layout from the before layout; returns it and the changes.

    Example:
        >>> from cdtools.synthetic.layout import make_layout
        >>> before = make_layout(512, np.random.default_rng(0))
        >>> after, changes = apply_changes(before, np.random.default_rng(1))
        >>> sorted({c.kind for c in changes}) <= sorted(CHANGE_KINDS)
        True
    """
    editor = _Editor(
        material=before.material.copy(),
        roof=before.roof.copy(),
        height=before.height.copy(),
        marking=before.marking.copy(),
        taken=np.zeros(before.material.shape, dtype=bool),
        rng=rng,
        grid_angle=before.grid_angle,
        changes=[],
    )
    makers: dict[str, Callable[[_Editor], None]] = {
        "new_building": _new_buildings,
        "new_road": _new_road,
        "demolition": lambda e: _demolition(e, before),
        "forest_cleared": _forest_cleared,
        "forest_built": _forest_built,
        "new_water": _new_water,
    }
    scale = (before.size / 1024) ** 2
    for kind in CHANGE_KINDS:
        for _ in range(max(1, rng.poisson(_RATE[kind] * scale))):
            makers[kind](editor)
    after = dataclasses.replace(
        before,
        material=editor.material,
        roof=editor.roof,
        height=editor.height,
        marking=editor.marking,
        buildings=(),
    )
    return after, tuple(editor.changes)


def _new_buildings(editor: _Editor) -> None:
    """One to three new houses in a row on open land."""
    for _ in range(_TRIES // 4):
        site = editor.random_site(_OPEN)
        if site is None:
            return
        angle = editor.grid_angle + editor.rng.integers(0, 2) * np.pi / 2
        step = editor.rng.uniform(45, 60)
        built = 0
        for index in range(int(editor.rng.integers(1, 4))):
            along = index * step
            centre = (site[0] + along * np.cos(angle), site[1] + along * np.sin(angle))
            claimed = editor.claim("new_building", editor.house(centre, angle), _OPEN)
            if claimed is not None:
                editor.material[claimed[0]][claimed[1]] = Material.RESIDENTIAL
                editor.build(*claimed)
                built += 1
        if built:
            return


def _new_road(editor: _Editor) -> None:
    """A new road 6-11 m wide and 60-200 m long across fields or woods."""
    rng = editor.rng
    for attempt in range(_TRIES // 2):
        site = editor.random_site(_CLEARABLE)
        if site is None:
            return
        angle = editor.grid_angle + rng.integers(0, 2) * np.pi / 2 + rng.normal(0, 0.05)
        length = rng.uniform(120, 400) * (1 - attempt / _TRIES)
        width = rng.uniform(12, 22)
        ends = np.array([[-length / 2, 0.0], [length / 2, 0.0]])
        rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        line = shapely.LineString(ends @ rotation + np.array(site))
        road = geometry.snap(line.buffer(width / 2, cap_style="flat"))
        claimed = editor.claim("new_road", road, _CLEARABLE)
        if claimed is not None:
            editor.material[claimed[0]][claimed[1]] = Material.HIGHWAY
            geometry.burn(
                editor.marking,
                [(g, 1) for g in road_markings(line, width)],
                where=lambda w: editor.material[w] == Material.HIGHWAY,
            )
            return


def _demolition(editor: _Editor, before: Layout) -> None:
    """A house torn down: its plot is left as rubble."""
    houses = [b for b in before.buildings if b.height > 0 and b.footprint.area < 2500]
    if not houses:
        return
    for _ in range(_TRIES // 4):
        house = houses[int(editor.rng.integers(0, len(houses)))]
        claimed = editor.claim(
            "demolition", house.footprint, (Material.RESIDENTIAL, Material.INDUSTRIAL), roofed=True
        )
        if claimed is not None:
            window, footprint = claimed
            editor.material[window][footprint] = Material.RUBBLE
            editor.roof[window][footprint] = 0
            editor.height[window][footprint] = 0
            return


def _forest_cleared(editor: _Editor) -> None:
    """A patch of wood 12-33 m across cut down to bare soil, or cut and grassed over."""
    for attempt in range(_TRIES // 2):
        site = editor.random_site((Material.FOREST,))
        if site is None:
            return
        radius = editor.rng.uniform(25, 65) * (1 - attempt / _TRIES)
        patch = geometry.blob(site, radius, editor.rng, wobble=0.35)
        claimed = editor.claim("forest_cleared", patch, _CLEARABLE, core=(Material.FOREST,))
        if claimed is not None:
            surface = Material.BARE_SOIL if editor.rng.random() < 0.5 else Material.HERBACEOUS
            editor.material[claimed[0]][claimed[1]] = surface
            return


def _forest_built(editor: _Editor) -> None:
    """A lot cleared in a wood with a new house and garden on it."""
    rng = editor.rng
    for _ in range(_TRIES // 2):
        site = editor.random_site((Material.FOREST,))
        if site is None:
            return
        angle = editor.grid_angle + rng.uniform(-0.2, 0.2)
        half = rng.uniform(20, 36, size=2)
        box = np.array([-half[0], -half[1], half[0], half[1]])
        lot = geometry.rectangles(box, centre=site, angle=angle)[0]
        claimed = editor.claim(
            "forest_built", lot, _CLEARABLE, core=(Material.FOREST,), core_share=0.85
        )
        if claimed is not None:
            editor.material[claimed[0]][claimed[1]] = Material.RESIDENTIAL
            house = editor.house(site, angle)
            window, footprint = geometry.footprint(house.intersection(lot), editor.material.shape)
            editor.build(window, footprint)
            return


def _new_water(editor: _Editor) -> None:
    """A new pond 18-50 m across dug into farmland."""
    for _ in range(_TRIES // 4):
        site = editor.random_site(_OPEN)
        if site is None:
            return
        pond = geometry.blob(site, editor.rng.uniform(18, 50), editor.rng)
        claimed = editor.claim("new_water", pond, _OPEN)
        if claimed is not None:
            editor.material[claimed[0]][claimed[1]] = Material.SEA_LAKE
            return
