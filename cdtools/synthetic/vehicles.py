"""Vehicles: cars in the streets and on yards, lorries and containers at the works.

They are parked afresh on every date, so they differ between dates without being
change (as in real change-detection datasets, where cars are never labelled). They are
drawn as small roofs (with low shadows) on a copy of a layout.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cdtools.synthetic import geometry, palette
from cdtools.synthetic.landcover import Material, is_any
from cdtools.synthetic.layout import Layout

# Street or yard area per vehicle, in pixels (one car per 175 m2 of street or yard).
_PIXELS_PER_CAR = 700
_PIXELS_PER_LORRY = 2500


def park_vehicles(layout: Layout, rng: np.random.Generator) -> Layout:
    """A copy of ``layout`` with cars and lorries parked on streets and yards.

    Example:
        >>> from cdtools.synthetic.layout import make_layout
        >>> layout = make_layout(512, np.random.default_rng(0))
        >>> parked = park_vehicles(layout, np.random.default_rng(1))
        >>> parked.roof.shape == layout.roof.shape
        True
    """
    free = layout.roof == 0
    street = free & is_any(layout.material, (Material.STREET, Material.INDUSTRIAL))
    yard = free & (layout.material == Material.INDUSTRIAL)
    cars = _vehicles(layout, street, _PIXELS_PER_CAR, (8, 10), (4, 4.6), rng)
    lorries = _vehicles(layout, yard, _PIXELS_PER_LORRY, (22, 34), (5, 6), rng)
    polygons = np.concatenate([cars, lorries])
    colours = np.concatenate(
        [rng.choice(palette.CARS, size=len(cars)), rng.choice(palette.LORRIES, size=len(lorries))]
    )
    heights = np.concatenate([np.full(len(cars), 3), np.full(len(lorries), 7)])
    roof, height = layout.roof.copy(), layout.height.copy()
    geometry.burn(roof, zip(polygons, colours, strict=True), where=lambda w: street[w])
    geometry.burn(height, zip(polygons, heights, strict=True), where=lambda w: street[w])
    return dataclasses.replace(layout, roof=roof, height=height)


def _vehicles(
    layout: Layout,
    ground: np.ndarray,
    pixels_each: int,
    length: tuple[float, float],
    width: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Vehicle rectangles on random pixels of ``ground``, along the street grid."""
    spots = np.flatnonzero(ground)
    count = rng.poisson(len(spots) / pixels_each) if len(spots) else 0
    picked = rng.choice(spots, size=count) if count else np.zeros(0, dtype=np.int64)
    rows, cols = np.divmod(picked, layout.size)
    # Centres in the grid frame (see geometry.rectangles), where streets run along u or v.
    x, y = cols + 0.5 - layout.size / 2, rows + 0.5 - layout.size / 2
    cos, sin = np.cos(layout.grid_angle), np.sin(layout.grid_angle)
    u, v = x * cos + y * sin, -x * sin + y * cos
    long_side = rng.uniform(*length, size=count) / 2
    short_side = rng.uniform(*width, size=count) / 2
    turned = rng.random(count) < 0.5
    du = np.where(turned, short_side, long_side)
    dv = np.where(turned, long_side, short_side)
    boxes = np.column_stack([u - du, v - dv, u + du, v + dv])
    centre = (layout.size / 2, layout.size / 2)
    return geometry.rectangles(boxes, centre=centre, angle=layout.grid_angle)
