"""Colours of the sample world's surfaces, as display values in 0..1 (red, green, blue, NIR).

Vegetation has a lush and a dry colour; a date's greenness picks a point between them.
Everything else looks the same in both seasons (only the date's light changes it).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from cdtools.synthetic.landcover import Material


def _table(rows: dict[int, tuple[float, float, float, float]], count: int) -> np.ndarray:
    table = np.zeros((count, 4), dtype=np.float32)
    for index, colour in rows.items():
        table[index] = colour
    return table


_LUSH = {
    Material.ANNUAL_CROP: (0.40, 0.46, 0.27, 0.45),
    Material.FOREST: (0.10, 0.15, 0.08, 0.25),  # forest floor; crowns are painted on top
    Material.HERBACEOUS: (0.39, 0.45, 0.26, 0.42),
    Material.HIGHWAY: (0.33, 0.33, 0.34, 0.30),
    Material.INDUSTRIAL: (0.60, 0.59, 0.56, 0.50),
    Material.PASTURE: (0.41, 0.52, 0.27, 0.50),
    Material.PERMANENT_CROP: (0.50, 0.49, 0.35, 0.38),
    Material.RESIDENTIAL: (0.35, 0.47, 0.24, 0.46),
    Material.RIVER: (0.21, 0.27, 0.21, 0.05),
    Material.SEA_LAKE: (0.11, 0.19, 0.25, 0.03),
    Material.BARE_SOIL: (0.66, 0.55, 0.42, 0.45),
    Material.RUBBLE: (0.58, 0.55, 0.50, 0.45),
    Material.STREET: (0.46, 0.45, 0.44, 0.40),
}
_DRY = {
    **_LUSH,
    Material.ANNUAL_CROP: (0.58, 0.53, 0.38, 0.38),
    Material.FOREST: (0.15, 0.16, 0.10, 0.22),
    Material.HERBACEOUS: (0.62, 0.56, 0.40, 0.34),
    Material.PASTURE: (0.64, 0.60, 0.43, 0.36),
    Material.PERMANENT_CROP: (0.63, 0.56, 0.42, 0.35),
    Material.RESIDENTIAL: (0.56, 0.54, 0.38, 0.36),
}
GROUND_LUSH = _table(_LUSH, len(Material))
GROUND_DRY = _table(_DRY, len(Material))

# Texture strength per material for the fields (regional, field, patch, crown); the
# per-pixel grain has its own table below.
TEXTURE_AMPLITUDE = _table(
    {
        Material.ANNUAL_CROP: (0.05, 0.05, 0.04, 0.02),
        Material.FOREST: (0.05, 0.08, 0.10, 0.08),
        Material.HERBACEOUS: (0.06, 0.08, 0.12, 0.07),
        Material.HIGHWAY: (0.02, 0.03, 0.02, 0.02),
        Material.INDUSTRIAL: (0.03, 0.06, 0.06, 0.02),
        Material.PASTURE: (0.06, 0.08, 0.06, 0.03),
        Material.PERMANENT_CROP: (0.04, 0.04, 0.06, 0.04),
        Material.RESIDENTIAL: (0.04, 0.05, 0.08, 0.05),
        Material.RIVER: (0.03, 0.04, 0.01, 0.0),
        Material.SEA_LAKE: (0.03, 0.03, 0.01, 0.0),
        Material.BARE_SOIL: (0.05, 0.09, 0.08, 0.05),
        Material.RUBBLE: (0.02, 0.04, 0.10, 0.12),
        Material.STREET: (0.02, 0.03, 0.02, 0.02),
    },
    len(Material),
)
GRAIN_AMPLITUDE = np.array(
    [0.04, 0.05, 0.06, 0.05, 0.05, 0.04, 0.05, 0.05, 0.01, 0.01, 0.06, 0.15, 0.05],
    dtype=np.float32,
)

# Trees grow where the tree field exceeds the material's threshold (inf: never).
TREE_THRESHOLD = np.full(len(Material), np.inf, dtype=np.float32)
TREE_THRESHOLD[[Material.FOREST, Material.HERBACEOUS, Material.PASTURE, Material.RESIDENTIAL]] = (
    -0.45,
    1.5,
    2.3,
    1.05,
)
TREE_HEIGHT = np.zeros(len(Material), dtype=np.float32)  # in pixels (0.5 m)
TREE_HEIGHT[[Material.FOREST, Material.HERBACEOUS, Material.PASTURE, Material.RESIDENTIAL]] = (
    26,
    8,
    20,
    18,
)
CROWN_LUSH = np.array([0.13, 0.23, 0.09, 0.48], dtype=np.float32)
CROWN_DRY = np.array([0.21, 0.24, 0.12, 0.36], dtype=np.float32)
BARE_BRANCHES = np.array([0.36, 0.33, 0.27, 0.28], dtype=np.float32)
ORCHARD_CROWN = np.array([0.20, 0.31, 0.13, 0.46], dtype=np.float32)


class CropState(IntEnum):
    """What an annual-crop field looks like on a date."""

    GREEN = 0
    YOUNG = 1
    RIPE = 2
    STUBBLE = 3
    PLOUGHED = 4


# Colours of the crop rows (ridge) and between them (furrow): [state, lush/dry, band].
CROP_RIDGE = np.array(
    [
        [(0.26, 0.41, 0.16, 0.56), (0.44, 0.47, 0.26, 0.42)],
        [(0.33, 0.45, 0.21, 0.46), (0.47, 0.48, 0.30, 0.38)],
        [(0.80, 0.70, 0.43, 0.50), (0.80, 0.70, 0.43, 0.50)],
        [(0.79, 0.74, 0.59, 0.48), (0.79, 0.74, 0.59, 0.48)],
        [(0.57, 0.46, 0.35, 0.38), (0.57, 0.46, 0.35, 0.38)],
    ],
    dtype=np.float32,
)
CROP_FURROW = np.array(
    [
        [(0.32, 0.42, 0.21, 0.48), (0.51, 0.50, 0.33, 0.38)],
        [(0.60, 0.50, 0.38, 0.40), (0.62, 0.52, 0.39, 0.40)],
        [(0.70, 0.60, 0.37, 0.45), (0.70, 0.60, 0.37, 0.45)],
        [(0.64, 0.59, 0.46, 0.42), (0.64, 0.59, 0.46, 0.42)],
        [(0.37, 0.29, 0.22, 0.27), (0.37, 0.29, 0.22, 0.27)],
    ],
    dtype=np.float32,
)

ROOF_COLOURS = np.array(
    [
        (0.00, 0.00, 0.00, 0.00),  # 0: no roof
        # 1-10: pitched house roofs
        (0.66, 0.38, 0.28, 0.45),  # terracotta
        (0.29, 0.29, 0.31, 0.28),  # dark shingle
        (0.43, 0.35, 0.29, 0.33),  # brown shingle
        (0.68, 0.67, 0.64, 0.55),  # light grey
        (0.41, 0.45, 0.51, 0.38),  # blue-grey
        (0.58, 0.25, 0.21, 0.38),  # red
        (0.34, 0.46, 0.39, 0.35),  # green metal
        (0.77, 0.71, 0.59, 0.60),  # beige
        (0.87, 0.87, 0.84, 0.75),  # white
        (0.21, 0.21, 0.23, 0.20),  # charcoal
        # 11-15: flat roofs of halls
        (0.89, 0.89, 0.87, 0.76),
        (0.74, 0.75, 0.75, 0.63),
        (0.79, 0.75, 0.65, 0.62),
        (0.58, 0.68, 0.79, 0.55),
        (0.43, 0.43, 0.45, 0.38),
        # 16: swimming pool
        (0.30, 0.72, 0.82, 0.10),
        # 17-22: cars
        (0.85, 0.85, 0.85, 0.60),
        (0.08, 0.08, 0.09, 0.08),
        (0.62, 0.63, 0.65, 0.50),
        (0.62, 0.10, 0.10, 0.30),
        (0.12, 0.20, 0.45, 0.20),
        (0.25, 0.25, 0.27, 0.20),
        # 23-26: lorries and containers
        (0.55, 0.25, 0.15, 0.35),
        (0.15, 0.30, 0.55, 0.30),
        (0.88, 0.88, 0.86, 0.70),
        (0.20, 0.40, 0.25, 0.30),
    ],
    dtype=np.float32,
)
HOUSE_ROOFS = range(1, 11)
FLAT_ROOFS = range(11, 16)
POOL = 16
CARS = range(17, 23)
LORRIES = range(23, 27)
PITCHED = np.zeros(len(ROOF_COLOURS), dtype=bool)
PITCHED[list(HOUSE_ROOFS)] = True
FLAT = np.zeros(len(ROOF_COLOURS), dtype=bool)
FLAT[list(FLAT_ROOFS)] = True

MARKING = np.array([0.86, 0.86, 0.80, 0.70], dtype=np.float32)
ALGAE = np.array([0.20, 0.29, 0.16, 0.12], dtype=np.float32)
SHORE = np.array([0.42, 0.40, 0.31, 0.22], dtype=np.float32)
SHADOW_TINT = np.array([0.38, 0.40, 0.47, 0.45], dtype=np.float32)
"""Fraction of light left in shadow, per band (shadows are lit by the blue sky)."""
