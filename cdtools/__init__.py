"""cdtools: deep-learning change detection on satellite and aerial imagery.

The public verbs are imported lazily, so ``import cdtools`` stays quick and does not
pull in torch, fastai or geopandas until they are needed.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "make_scene_pair": "cdtools.synthetic",
    "make_landcover_patches": "cdtools.synthetic",
    "make_scene_patches": "cdtools.synthetic",
    "make_time_series": "cdtools.synthetic",
    "export_training_data": "cdtools.export",
    "masks_to_labels": "cdtools.sparse_labels",
    "prepare_data": "cdtools.data",
    "fetch": "cdtools.manifest",
    "load_pair": "cdtools.pair",
    "load_series": "cdtools.series",
    "predict_scene": "cdtools.scene",
    "write_raster": "cdtools.cog",
    "ChangeDetector": "cdtools.detector",
    "sample_detector": "cdtools.samples",
    "sample_landcover_classifier": "cdtools.samples",
    "prepare_landcover_data": "cdtools.landcover_data",
    "EUROSAT_CLASSES": "cdtools.landcover_classes",
    "LANDCOVER_COLOURS": "cdtools.landcover_classes",
    "LandCoverClassifier": "cdtools.landcover",
    "classify_patches": "cdtools.transition",
    "transitions": "cdtools.transition",
    "plot_transitions": "cdtools.transition",
    "list_transitions": "cdtools.transition",
    "predictions_to_regions": "cdtools.regions",
    "localize_regions": "cdtools.regions",
    "regions_to_polygons": "cdtools.regions",
    "grab_patches": "cdtools.spotcheck",
    "visual_spot_check": "cdtools.spotcheck",
    "RegionPatch": "cdtools.spotcheck",
    "SplitMap": "cdtools.widgets",
    "TimeSlider": "cdtools.widgets",
    "BatchViewer": "cdtools.widgets",
    "ResultsGrid": "cdtools.widgets",
    "SpotCheckViewer": "cdtools.widgets",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cdtools' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
