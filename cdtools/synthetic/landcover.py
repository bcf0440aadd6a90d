"""Land-cover classes of the sample world and the surface materials that are painted.

The land-cover maps use the ten EuroSAT classes, code = index in :data:`EUROSAT_CLASSES`.
The renderer works one level finer, on *materials*: the ten classes' typical surfaces
plus a few that only appear through change (bare soil, rubble) or inside a class (the
streets of a residential block). :data:`MATERIAL_CLASS` maps each material to its class.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from cdtools.landcover.classes import EUROSAT_CLASSES


class Material(IntEnum):
    """Surfaces the renderer knows; the first ten share codes with the EuroSAT classes."""

    ANNUAL_CROP = 0
    FOREST = 1
    HERBACEOUS = 2
    HIGHWAY = 3
    INDUSTRIAL = 4  # concrete yards and parking around the halls
    PASTURE = 5
    PERMANENT_CROP = 6  # orchards and vineyards
    RESIDENTIAL = 7  # lawns and gardens between the houses
    RIVER = 8
    SEA_LAKE = 9
    BARE_SOIL = 10  # cleared land
    RUBBLE = 11  # a demolished building's plot
    STREET = 12  # local streets inside residential blocks


N_MATERIALS = len(Material)

_HERBACEOUS = EUROSAT_CLASSES.index("HerbaceousVegetation")
_RESIDENTIAL = EUROSAT_CLASSES.index("Residential")
MATERIAL_CLASS = np.array([*range(10), _HERBACEOUS, _HERBACEOUS, _RESIDENTIAL], dtype=np.uint8)
"""Land-cover class code of each material (index = material code)."""

FARMLAND = (Material.ANNUAL_CROP, Material.HERBACEOUS, Material.PASTURE, Material.PERMANENT_CROP)
"""Materials of open country, which forest, water and new building may take over."""

WATER = (Material.RIVER, Material.SEA_LAKE)


def landcover_from_material(material: np.ndarray) -> np.ndarray:
    """Map a material raster to EuroSAT class codes (uint8, 0..9).

    Example:
        >>> landcover_from_material(np.array([[Material.STREET]], dtype=np.uint8))
        array([[7]], dtype=uint8)
    """
    return MATERIAL_CLASS[material]


def is_any(material: np.ndarray, materials: tuple[int, ...]) -> np.ndarray:
    """Boolean raster: where ``material`` is one of ``materials`` (a lookup, not np.isin)."""
    lookup = np.zeros(N_MATERIALS, dtype=bool)
    lookup[list(materials)] = True
    return lookup[material]
