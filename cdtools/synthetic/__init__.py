"""The embedded synthetic sample world: scene pairs with change truth, land-cover patches.

Everything is made from a seed, offline, in seconds: :func:`make_scene_pair` writes a
georeferenced before/after pair near Austin, Texas (EPSG:32614, 0.5 m pixels) with
change polygons, a change mask and land-cover maps; :func:`make_time_series` a series of
dates of one place with the change of each step; :func:`reproject_to_tiles` turns a
date into tiles in another CRS and resolution, as real deliveries come;
:func:`make_landcover_patches` writes EuroSAT-like patches rendered the same way and
:func:`make_scene_patches` patches cut from scenes, labelled by their centre's land cover.
The models trained on it are in :mod:`cdtools.samples`: the sample world never imports
the learners.
"""

from __future__ import annotations

from cdtools.landcover.classes import EUROSAT_CLASSES, LANDCOVER_COLOURS
from cdtools.synthetic.changes import CHANGE_KINDS
from cdtools.synthetic.patches import make_landcover_patches
from cdtools.synthetic.scene import SampleWorld, make_scene_pair
from cdtools.synthetic.scene_patches import make_scene_patches
from cdtools.synthetic.series import SampleSeries, make_time_series
from cdtools.synthetic.tiles import reproject_to_tiles

__all__ = [
    "CHANGE_KINDS",
    "EUROSAT_CLASSES",
    "LANDCOVER_COLOURS",
    "SampleSeries",
    "SampleWorld",
    "make_landcover_patches",
    "make_scene_pair",
    "make_scene_patches",
    "make_time_series",
    "reproject_to_tiles",
]
