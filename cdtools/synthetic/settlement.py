"""Towns of the sample world: residential blocks with houses, and industrial halls.

Everything here works in a parcel's own frame, where a parcel is an axis-aligned box
``(u0, v0, u1, v1)`` in pixels (0.5 m); the layout rotates the results onto the scene.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from cdtools.synthetic import palette


@dataclass
class Plan:
    """Boxes to paint, each list of ``(u0, v0, u1, v1)``, with roof style and height."""

    yards: list[tuple[float, float, float, float]]
    buildings: list[tuple[float, float, float, float]]
    roofs: list[int]
    heights: list[int]

    @classmethod
    def empty(cls) -> Plan:
        return cls([], [], [], [])

    def add_building(self, box: tuple[float, float, float, float], roof: int, height: int) -> None:
        self.buildings.append(box)
        self.roofs.append(roof)
        self.heights.append(height)


def _transposed(box: tuple[float, float, float, float], swap: bool) -> tuple[float, ...]:
    u0, v0, u1, v1 = box
    return (v0, u0, v1, u1) if swap else box


def residential_plan(box: tuple[float, float, float, float], rng: np.random.Generator) -> Plan:
    """Split a parcel into street blocks with a row of lots on each side, one house each.

    The parcel itself is street; blocks (gardens) are inset from it, so streets run
    between neighbouring blocks. Houses are 9-24 m wide, set back from the street.
    """
    plan = Plan.empty()
    u0, v0, u1, v1 = box
    swap = (u1 - u0) < (v1 - v0)  # lots are strung along the parcel's long side
    if swap:
        u0, v0, u1, v1 = v0, u0, v1, u1
    half_street = rng.uniform(5.0, 7.5)
    strips = max(1, round((v1 - v0) / rng.uniform(110, 150)))
    edges = np.linspace(v0, v1, strips + 1)
    for top, bottom in itertools.pairwise(edges):
        yard = (u0 + half_street, top + half_street, u1 - half_street, bottom - half_street)
        if yard[2] - yard[0] < 30 or yard[3] - yard[1] < 30:
            continue
        plan.yards.append(_transposed(yard, swap))
        depth = yard[3] - yard[1]
        if depth >= 72:
            middle = (yard[1] + yard[3]) / 2
            rows = [(yard[1], middle, True), (middle, yard[3], False)]
        else:
            rows = [(yard[1], yard[3], True)]
        for row_top, row_bottom, street_above in rows:
            _lots_in_row(plan, yard[0], yard[2], row_top, row_bottom, street_above, swap, rng)
    return plan


def _lots_in_row(
    plan: Plan,
    start: float,
    end: float,
    top: float,
    bottom: float,
    street_above: bool,
    swap: bool,
    rng: np.random.Generator,
) -> None:
    """Place lots from ``start`` to ``end`` between ``top`` and ``bottom``, a house on each."""
    u = start + rng.uniform(0, 6)
    while True:
        width = rng.uniform(34, 56)
        if u + width > end:
            break
        house_width = width - rng.uniform(7, 15)
        house_depth = min(rng.uniform(18, 30), bottom - top - 14)
        setback = rng.uniform(5, 11)
        left = u + (width - house_width) / 2 + rng.uniform(-2, 2)
        if street_above:
            front, back = top + setback, top + setback + house_depth
        else:
            front, back = bottom - setback - house_depth, bottom - setback
        if house_depth >= 12:
            roof = int(rng.choice(palette.HOUSE_ROOFS))
            plan.add_building(
                _transposed((left, front, left + house_width, back), swap),
                roof,
                int(rng.integers(10, 17)),
            )
            _maybe_pool(plan, u, width, top, bottom, front, back, street_above, swap, rng)
        u += width


def _maybe_pool(
    plan: Plan,
    lot_start: float,
    lot_width: float,
    top: float,
    bottom: float,
    front: float,
    back: float,
    street_above: bool,
    swap: bool,
    rng: np.random.Generator,
) -> None:
    """One garden in six has a pool behind the house."""
    if rng.random() > 1 / 6:
        return
    length, breadth = rng.uniform(9, 15), rng.uniform(5, 8)
    room = (bottom - back) if street_above else (front - top)
    if room < breadth + 6:
        return
    left = lot_start + rng.uniform(3, max(lot_width - length - 3, 3.5))
    near = back + 3 if street_above else front - 3 - breadth
    plan.add_building(
        _transposed((left, near, left + length, near + breadth), swap), palette.POOL, 0
    )


def industrial_plan(box: tuple[float, float, float, float], rng: np.random.Generator) -> Plan:
    """One or two large flat-roofed halls on a concrete yard."""
    plan = Plan.empty()
    u0, v0, u1, v1 = box
    swap = (u1 - u0) < (v1 - v0)
    if swap:
        u0, v0, u1, v1 = v0, u0, v1, u1
    halls = 2 if (u1 - u0) > 240 and rng.random() < 0.7 else 1
    cuts = np.linspace(u0, u1, halls + 1)
    for left, right in itertools.pairwise(cuts):
        inset = rng.uniform(8, 24, size=4)
        hall = (left + inset[0], v0 + inset[1], right - inset[2], v1 - inset[3])
        if hall[2] - hall[0] < 30 or hall[3] - hall[1] < 30:
            continue
        roof = int(rng.choice(palette.FLAT_ROOFS))
        plan.add_building(_transposed(hall, swap), roof, int(rng.integers(16, 27)))
    return plan
