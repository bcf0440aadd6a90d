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
    "export_training_data": "cdtools.chips.export",
    "masks_to_labels": "cdtools.chips.sparse_labels",
    "prepare_data": "cdtools.chips.data",
    "fetch": "cdtools.io.manifest",
    "load_pair": "cdtools.io.pair",
    "load_series": "cdtools.io.series",
    "predict_scene": "cdtools.scene.predict",
    "detect_change": "cdtools.unsupervised.detect",
    "weak_labels": "cdtools.unsupervised.weak_labels",
    "detect_series_change": "cdtools.unsupervised.series",
    "first_change_date": "cdtools.unsupervised.series",
    "plot_first_change": "cdtools.unsupervised.series",
    "write_raster": "cdtools.io.cog",
    "ChangeDetector": "cdtools.learn.detector",
    "sample_detector": "cdtools.samples",
    "sample_landcover_classifier": "cdtools.samples",
    "prepare_landcover_data": "cdtools.landcover.data",
    "EUROSAT_CLASSES": "cdtools.landcover.classes",
    "LANDCOVER_COLOURS": "cdtools.landcover.classes",
    "LandCoverClassifier": "cdtools.landcover.classifier",
    "classify_patches": "cdtools.landcover.transition",
    "transitions": "cdtools.landcover.transition",
    "plot_transitions": "cdtools.landcover.transition",
    "list_transitions": "cdtools.landcover.transition",
    "predictions_to_regions": "cdtools.regions.table",
    "localize_regions": "cdtools.regions.table",
    "regions_to_polygons": "cdtools.regions.table",
    "join_parcels": "cdtools.regions.parcels",
    "grab_patches": "cdtools.regions.spotcheck",
    "visual_spot_check": "cdtools.regions.spotcheck",
    "RegionPatch": "cdtools.regions.spotcheck",
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
