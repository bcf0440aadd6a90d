"""ResultsGrid: page through a detector's validation results and move its threshold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from cdtools.errors import ParameterError
from cdtools.widgets.pager import PagedPanel, Pager

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cdtools.learn.detector import ChangeDetector

THRESHOLDS = (0.05, 0.95)  # the slider's range


class ResultsGrid(PagedPanel):
    """Validation batches, one per page: before | after | truth | prediction, as
    ``ChangeDetector.show_results`` draws them, with a threshold slider.

    The model runs once per batch: its probabilities are kept, so moving the threshold
    only redraws. The threshold here is for looking; the detector's own is not changed.

    Args:
        detector: a :class:`cdtools.ChangeDetector` with data (validation chips).
        rows: chips shown per page (at most the batch size).

    Example:
        >>> grid = ResultsGrid(detector, rows=3)  # doctest: +SKIP
        >>> grid  # last in a cell: shows itself  # doctest: +SKIP
        >>> grid.set_threshold(0.3)  # what moving the slider does  # doctest: +SKIP
    """

    def __init__(self, detector: ChangeDetector, *, rows: int = 4) -> None:
        if rows < 1:
            raise ParameterError(f"rows must be at least 1, got {rows}.")
        self.detector, self.rows = detector, rows
        self.threshold = float(detector.threshold)
        # page: (before, after, mask, probability) of its first `rows` chips; the first
        # call also says what to do when the detector has no validation chips
        self._results: dict[int, Any] = {0: self._predict(0)}
        self.slider = widgets.FloatSlider(
            value=min(max(self.threshold, THRESHOLDS[0]), THRESHOLDS[1]),
            min=THRESHOLDS[0],
            max=THRESHOLDS[1],
            step=0.01,
            description="threshold",
            continuous_update=False,
        )
        self.slider.observe(lambda change: self.set_threshold(change["new"]), names="value")
        self.pager = Pager(self._draw, len(detector.data.valid), name="batch")
        self.widget = widgets.VBox([self.pager.controls, self.slider, self.pager.image])
        self.widget.add_class("cdtools-results-grid")  # a handle for pages and tests

    def set_threshold(self, threshold: float) -> None:
        """Redraw the page shown with pixels above ``threshold`` as change (no new prediction)."""
        if not 0.0 <= threshold <= 1.0:
            raise ParameterError(f"threshold must be in [0, 1], got {threshold}.")
        if threshold == self.threshold:
            return
        self.threshold = float(threshold)
        if THRESHOLDS[0] <= threshold <= THRESHOLDS[1]:
            self.slider.value = threshold  # its observer comes back here and returns above
        self.pager.redraw()

    def _predict(self, page: int) -> tuple[Any, ...]:
        return tuple(t[: self.rows] for t in self.detector.validation_batch(batch=page))

    def _draw(self, page: int) -> Figure:
        if page not in self._results:
            self._results[page] = self._predict(page)
        return self.detector.draw_results(
            self._results[page], rows=self.rows, threshold=self.threshold
        )
