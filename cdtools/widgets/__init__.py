"""Panels to look through in Jupyter: one class per file, each holding its widgets.

Every panel displays itself (put it last in a cell) and exposes what it does on an event
as a plain method, so tests drive it without a browser. ipywidgets and ipyleaflet are
imported here only, so ``import cdtools`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SplitMap": "cdtools.widgets.split_map",
    "TimeSlider": "cdtools.widgets.time_slider",
    "BatchViewer": "cdtools.widgets.batch_viewer",
    "ResultsGrid": "cdtools.widgets.results_grid",
    "SpotCheckViewer": "cdtools.widgets.spot_check_viewer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cdtools.widgets' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
