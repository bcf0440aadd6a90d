"""Water and roads of the sample world: meandering rivers, lakes, highways and their paint.

Each function burns its feature into a layout's rasters in place, from a centre line or
outline in pixel coordinates, so that edges are smooth at any scale.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from cdtools.synthetic import geometry
from cdtools.synthetic.landcover import FARMLAND, WATER, Material, is_any


def add_river(
    material: np.ndarray, rng: np.random.Generator, *, through: tuple[float, float] | None = None
) -> None:
    """A meandering river 12-35 m wide from edge to edge, with a wooded or grassy bank."""
    size = material.shape[0]
    width = rng.uniform(24, 70)
    centre = through or tuple(rng.uniform(0.25, 0.75, size=2) * size)
    heading = rng.uniform(0, np.pi)
    along = np.arange(-1.5 * size, 1.5 * size, 6.0)
    offset = np.zeros_like(along)
    for factor in (1.0, 1.9, 3.3):
        wavelength = width * rng.uniform(10, 16) * factor
        offset += (
            wavelength
            * rng.uniform(0.06, 0.13)
            * np.sin(2 * np.pi * along / wavelength + rng.uniform(0, 6.3))
        )
    offset -= offset[np.argmin(np.abs(along))]  # pass through the centre
    x = centre[0] + along * np.cos(heading) - offset * np.sin(heading)
    y = centre[1] + along * np.sin(heading) + offset * np.cos(heading)
    line = shapely.LineString(np.column_stack([x, y]))
    bank_material = Material.FOREST if rng.random() < 0.5 else Material.HERBACEOUS
    bank = line.buffer(width / 2 + rng.uniform(6, 30))
    geometry.burn(material, [(bank, bank_material)], where=lambda w: is_any(material[w], FARMLAND))
    geometry.burn(material, [(line.buffer(width / 2), Material.RIVER)])


def add_lake(
    material: np.ndarray,
    rng: np.random.Generator,
    *,
    at: tuple[float, float] | None = None,
    radius: float | None = None,
) -> None:
    """A lake 45-140 m across with a grassy shore, over anything but highways."""
    size = material.shape[0]
    radius = radius or rng.uniform(45, 140)
    centre = at or tuple(rng.uniform(0.1, 0.9, size=2) * size)
    water = geometry.blob(centre, radius, rng)
    shore = water.buffer(rng.uniform(4, 12))
    geometry.burn(
        material,
        [(shore, Material.HERBACEOUS)],
        where=lambda w: ~is_any(material[w], (*WATER, Material.HIGHWAY)),
    )
    geometry.burn(
        material, [(water, Material.SEA_LAKE)], where=lambda w: material[w] != Material.HIGHWAY
    )


def add_highway(
    material: np.ndarray,
    marking: np.ndarray,
    grid_angle: float,
    rng: np.random.Generator,
    *,
    through: tuple[float, float] | None = None,
) -> None:
    """A highway 8-12 m wide across the scene with grass verges and painted lines."""
    size = material.shape[0]
    width = rng.uniform(16, 24)
    heading = grid_angle + rng.integers(0, 2) * np.pi / 2
    if rng.random() < 0.4:
        heading = rng.uniform(0, np.pi)
    centre = through or tuple(rng.uniform(0.15, 0.85, size=2) * size)
    along = np.arange(-1.5 * size, 1.5 * size, 8.0)
    bend = width * rng.uniform(0, 3) * np.sin(2 * np.pi * along / rng.uniform(2500, 6000))
    x = centre[0] + along * np.cos(heading) - bend * np.sin(heading)
    y = centre[1] + along * np.sin(heading) + bend * np.cos(heading)
    line = shapely.LineString(np.column_stack([x, y]))
    verge = line.buffer(width / 2 + rng.uniform(4, 10), cap_style="flat")
    geometry.burn(
        material, [(verge, Material.HERBACEOUS)], where=lambda w: ~is_any(material[w], WATER)
    )
    geometry.burn(material, [(line.buffer(width / 2, cap_style="flat"), Material.HIGHWAY)])
    geometry.burn(marking, [(g, 1) for g in road_markings(line, width)])


def road_markings(line: BaseGeometry, width: float) -> list[BaseGeometry]:
    """Edge lines and a dashed centre line (3 m dashes every 9 m) of a road."""
    edges = [line.offset_curve(side * (width / 2 - 2.0)) for side in (-1, 1)]
    starts = np.arange(0, line.length - 6, 18.0)
    heads = shapely.line_interpolate_point(line, starts)
    tails = shapely.line_interpolate_point(line, starts + 6)
    dashes = shapely.linestrings(
        np.stack([shapely.get_coordinates(heads), shapely.get_coordinates(tails)], axis=1)
    )
    return [*shapely.buffer([*edges, *dashes], 0.6, cap_style="flat")]
