"""Panel: what every cdtools panel shares, showing its widget when it is last in a cell."""

from __future__ import annotations

from typing import Any


class Panel:
    """A panel holds its ipywidgets in ``widget`` (a box) and displays that."""

    widget: Any

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
