"""Layout of the sample world: fields, woods, water, highways, towns and their buildings.

A layout is a set of rasters on the scene grid (one value per 0.5 m pixel) that say
what is where; :mod:`cdtools.synthetic.render` turns it into imagery, and
:mod:`cdtools.synthetic.changes` edits a copy of it into the after date.

The land is cut into rectangular parcels on a slightly rotated grid (binary space
partition); the parcels nearest the peaks of a smooth "urban" field become residential
blocks and industrial estates, the rest fields, pastures, orchards and meadows. Woods
grow where another smooth field is high, a river meanders across, lakes lie in the
open, and highways cross everything (bridges over water).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from cdtools.landcover.classes import EUROSAT_CLASSES
from cdtools.synthetic import geometry, palette
from cdtools.synthetic.features import add_highway, add_lake, add_river
from cdtools.synthetic.landcover import FARMLAND, Material, is_any
from cdtools.synthetic.noise import LatticeNoise
from cdtools.synthetic.settlement import Plan, industrial_plan, residential_plan

_FARM_MIX = (
    (Material.ANNUAL_CROP, 0.42),
    (Material.PASTURE, 0.25),
    (Material.HERBACEOUS, 0.21),
    (Material.PERMANENT_CROP, 0.12),
)


@dataclass(frozen=True)
class Parcels:
    """Per-parcel looks of fields (index = parcel id; 0 is "no parcel")."""

    angle: np.ndarray  # direction of crop rows, radians
    period: np.ndarray  # spacing of crop rows, pixels
    phase: np.ndarray
    orchard: np.ndarray  # permanent crops: orchard (tree dots) or vineyard (rows)
    state: np.ndarray  # (2, n): palette.CropState of the field before and after


@dataclass(frozen=True)
class Building:
    """A roofed object in pixel coordinates; pools are buildings of height 0."""

    footprint: BaseGeometry
    roof: int
    height: int


@dataclass(frozen=True)
class Layout:
    """What is where on one date, as rasters of the scene's shape."""

    material: np.ndarray  # uint8 Material
    parcel: np.ndarray  # int32 parcel id (fields only)
    roof: np.ndarray  # uint8 palette.ROOF_COLOURS index, 0 = open ground
    height: np.ndarray  # uint8 building height in pixels
    marking: np.ndarray  # uint8 1 = road paint
    parcels: Parcels
    buildings: tuple[Building, ...]
    grid_angle: float

    @property
    def size(self) -> int:
        return int(self.material.shape[0])


def make_layout(size: int, rng: np.random.Generator, *, theme: int | None = None) -> Layout:
    """Lay out a ``size`` x ``size`` world; ``theme`` (a class code) makes a one-class world.

    Themed worlds are what land-cover patches are cut from: all parcels of the class,
    or for Forest, Highway, River and SeaLake that feature over farmland.

    Example:
        >>> layout = make_layout(256, np.random.default_rng(0))
        >>> layout.material.shape
        (256, 256)
    """
    angle = float(rng.uniform(-0.35, 0.35))
    centre = (size / 2, size / 2)
    boxes = _partition(size, rng)
    polygons = geometry.rectangles(boxes, centre=centre, angle=angle)
    inside = shapely.intersects(polygons, shapely.box(0, 0, size, size))
    boxes, polygons = boxes[inside], polygons[inside]
    kinds = _parcel_kinds(size, polygons, rng, theme)

    material = np.full((size, size), Material.HERBACEOUS, dtype=np.uint8)
    parcel = np.zeros((size, size), dtype=np.int32)
    plan = _paint_parcels(material, parcel, boxes, kinds, centre, angle, rng)
    parcels = _parcel_looks(len(boxes) + 1, angle, rng)

    if theme is None or theme == EUROSAT_CLASSES.index("Forest"):
        _grow_forest(material, rng, everywhere=theme is not None)
    marking = np.zeros((size, size), dtype=np.uint8)
    through = (size / 2 + rng.uniform(-8, 8), size / 2 + rng.uniform(-8, 8))
    if theme is None:
        for _ in range(1 + rng.poisson(size / 8192)):
            add_river(material, rng)
        for _ in range(max(1, rng.poisson(0.5 * (size / 1024) ** 2))):
            add_lake(material, rng)
        for _ in range(1 + rng.poisson(0.8 * size / 1024)):
            add_highway(material, marking, angle, rng)
    elif theme == EUROSAT_CLASSES.index("River"):
        add_river(material, rng, through=through)
    elif theme == EUROSAT_CLASSES.index("SeaLake"):
        add_lake(material, rng, at=through, radius=rng.uniform(70, 200))
    elif theme == EUROSAT_CLASSES.index("Highway"):
        add_highway(material, marking, angle, rng, through=through)

    buildings = _place_buildings(plan, centre, angle, material)
    roof, height = _roof_rasters(buildings, (size, size))
    return Layout(material, parcel, roof, height, marking, parcels, buildings, angle)


def _partition(size: int, rng: np.random.Generator) -> np.ndarray:
    """Cut a square covering the rotated scene into parcels 35-210 m across."""
    half = size / np.sqrt(2) + 8
    todo = [(-half, -half, half, half)]
    done = []
    while todo:
        u0, v0, u1, v1 = todo.pop()
        width, height = u1 - u0, v1 - v0
        if max(width, height) <= rng.uniform(140, 420):
            done.append((u0, v0, u1, v1))
            continue
        cut = rng.uniform(0.3, 0.7)
        if width >= height:
            middle = u0 + cut * width
            todo += [(u0, v0, middle, v1), (middle, v0, u1, v1)]
        else:
            middle = v0 + cut * height
            todo += [(u0, v0, u1, middle), (u0, middle, u1, v1)]
    return np.array(done, dtype=np.float64)


def _parcel_kinds(
    size: int, polygons: np.ndarray, rng: np.random.Generator, theme: int | None
) -> np.ndarray:
    """Material of each parcel: towns where the urban field peaks, farmland elsewhere."""
    count = len(polygons)
    farm = [int(m) for m, _ in _FARM_MIX]
    kinds = rng.choice(farm, size=count, p=[p for _, p in _FARM_MIX]).astype(np.uint8)
    if theme is not None:
        if theme in (*farm, Material.RESIDENTIAL, Material.INDUSTRIAL):
            kinds[:] = theme
        return kinds
    step = 16
    urban = LatticeNoise(size, 900, rng).sample(0, 0, size // step, size // step, step=step)
    centroids = shapely.get_coordinates(shapely.centroid(polygons))
    cells = np.clip((centroids[:, ::-1] // step).astype(int), 0, size // step - 1)
    order = np.argsort(-urban[cells[:, 0], cells[:, 1]], kind="stable")
    n_residential = int(np.ceil(0.24 * count)) if count >= 3 else 0
    n_industrial = round(0.06 * count)
    kinds[order[:n_residential]] = Material.RESIDENTIAL
    kinds[order[n_residential : n_residential + n_industrial]] = Material.INDUSTRIAL
    return kinds


def _paint_parcels(
    material: np.ndarray,
    parcel: np.ndarray,
    boxes: np.ndarray,
    kinds: np.ndarray,
    centre: tuple[float, float],
    angle: float,
    rng: np.random.Generator,
) -> Plan:
    """Burn parcels (fields inset by hedges, towns as streets with blocks); plan buildings."""
    plan = Plan.empty()
    whole, inner, fields = [], [], []
    for index, (box, kind) in enumerate(zip(boxes, kinds, strict=True)):
        if kind == Material.RESIDENTIAL:
            block = residential_plan(tuple(box), rng)
            whole.append((box, Material.STREET))
            inner += [(yard, Material.RESIDENTIAL) for yard in block.yards]
            _extend(plan, block)
        elif kind == Material.INDUSTRIAL:
            whole.append((box, Material.INDUSTRIAL))
            _extend(plan, industrial_plan(tuple(box), rng))
        else:
            hedge = rng.uniform(1.5, 4.0)
            inner.append((box + np.array([hedge, hedge, -hedge, -hedge]), int(kind)))
            fields.append((inner[-1][0], index + 1))
    shapes = [*whole, *inner]
    polygons = geometry.rectangles(np.array([s[0] for s in shapes]), centre=centre, angle=angle)
    geometry.burn(material, zip(polygons, [int(s[1]) for s in shapes], strict=True))
    if fields:
        polygons = geometry.rectangles(np.array([f[0] for f in fields]), centre=centre, angle=angle)
        geometry.burn(parcel, zip(polygons, [f[1] for f in fields], strict=True))
    return plan


def _extend(plan: Plan, more: Plan) -> None:
    plan.buildings += more.buildings
    plan.roofs += more.roofs
    plan.heights += more.heights


def _parcel_looks(count: int, angle: float, rng: np.random.Generator) -> Parcels:
    """Row direction and spacing of every field, and its crop state on both dates."""
    turn = rng.integers(0, 2, size=count) * (np.pi / 2)
    before = rng.choice(len(palette.CropState), size=count, p=[0.3, 0.2, 0.2, 0.15, 0.15])
    changes = rng.random(count) < 0.65
    after = np.where(changes, (before + rng.integers(1, 5, size=count)) % 5, before)
    return Parcels(
        angle=(angle + turn + rng.normal(0, 0.02, size=count)).astype(np.float32),
        period=rng.uniform(3.5, 8.0, size=count).astype(np.float32),
        phase=rng.uniform(0, 2 * np.pi, size=count).astype(np.float32),
        orchard=rng.random(count) < 0.6,
        state=np.stack([before, after]).astype(np.uint8),
    )


def _grow_forest(material: np.ndarray, rng: np.random.Generator, *, everywhere: bool) -> None:
    """Woods where a smooth field is high (about a quarter of the farmland)."""
    size = material.shape[0]
    broad, ragged = LatticeNoise(size, 170, rng), LatticeNoise(size, 36, rng)
    farmland = is_any(material, FARMLAND)
    coarse = broad.sample(0, 0, size // 8, size // 8, step=8)[farmland[4::8, 4::8]]
    threshold = -np.inf if everywhere or coarse.size == 0 else float(np.quantile(coarse, 0.75))
    for top in range(0, size, 1024):
        rows = min(1024, size - top)
        field = broad.sample(top, 0, rows, size) + 0.35 * ragged.sample(top, 0, rows, size)
        woods = (field > threshold) & farmland[top : top + rows]
        material[top : top + rows][woods] = Material.FOREST


def _place_buildings(
    plan: Plan, centre: tuple[float, float], angle: float, material: np.ndarray
) -> tuple[Building, ...]:
    """Keep the planned buildings that stand wholly on their yard (not on water or roads)."""
    if not plan.buildings:
        return ()
    footprints = geometry.rectangles(np.array(plan.buildings), centre=centre, angle=angle)
    ids = np.zeros(material.shape, dtype=np.int32)
    geometry.burn(ids, zip(footprints, range(1, len(footprints) + 1), strict=True))
    ground = is_any(material, (Material.RESIDENTIAL, Material.INDUSTRIAL))
    misplaced = np.bincount(ids[~ground], minlength=len(footprints) + 1)
    area = np.bincount(ids.ravel(), minlength=len(footprints) + 1)
    keep = (misplaced == 0) & (area > 0)
    return tuple(
        Building(footprints[i - 1], plan.roofs[i - 1], plan.heights[i - 1])
        for i in np.flatnonzero(keep[1:]) + 1
    )


def _roof_rasters(
    buildings: tuple[Building, ...], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    roof = np.zeros(shape, dtype=np.uint8)
    height = np.zeros(shape, dtype=np.uint8)
    geometry.burn(roof, [(b.footprint, b.roof) for b in buildings])
    geometry.burn(height, [(b.footprint, b.height) for b in buildings if b.height])
    return roof, height
