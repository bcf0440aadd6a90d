"""The land-cover classes cdtools names: EuroSAT's ten, in code order, with a colour each.

The land-cover classifier, the transition tables and the sample world's land-cover maps
all use them; a class's code is its index in :data:`EUROSAT_CLASSES`.
"""

from __future__ import annotations

EUROSAT_CLASSES: tuple[str, ...] = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)
"""The ten EuroSAT land-cover classes; a class's code in the land-cover maps is its index."""

LANDCOVER_COLOURS: tuple[str, ...] = (
    "#e8c95a",  # AnnualCrop: ripe grain
    "#1b5e20",  # Forest
    "#9ccc65",  # HerbaceousVegetation
    "#e53935",  # Highway
    "#7e57c2",  # Industrial
    "#c5e1a5",  # Pasture
    "#ef8a2c",  # PermanentCrop
    "#f48fb1",  # Residential
    "#1e88e5",  # River
    "#0d3a7a",  # SeaLake
)
"""One hex colour per class, in code order (``ListedColormap(LANDCOVER_COLOURS)`` works)."""
