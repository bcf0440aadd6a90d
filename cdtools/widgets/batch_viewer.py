"""BatchViewer: page through the batches of a data loader as ``show_batch`` draws them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import ipywidgets as widgets

from cdtools.errors import ParameterError
from cdtools.widgets.pager import PagedPanel, Pager

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cdtools.chips.data import ChangeDataLoaders


class BatchViewer(PagedPanel):
    """Batches of chips, one per page: before | after | change mask, as ``show_batch``.

    Page ``i`` is the ``i``-th batch drawn from the loader of ``split``. The training
    loader has no last page: it is shuffled and augmented anew every epoch. The
    validation loader has as many pages as batches. Pages seen are kept, so going back
    shows the very same picture.

    Args:
        data: DataLoaders from :func:`cdtools.prepare_data`.
        rows: chips shown per page (at most the batch size).
        split: "train" or "valid".

    Example:
        >>> viewer = BatchViewer(prepare_data("chips"), rows=3)  # doctest: +SKIP
        >>> viewer  # last in a cell: shows itself  # doctest: +SKIP
        >>> viewer.next()  # what the "next" button does  # doctest: +SKIP
    """

    def __init__(
        self,
        data: ChangeDataLoaders,
        *,
        rows: int = 4,
        split: Literal["train", "valid"] = "train",
    ) -> None:
        if split not in ("train", "valid"):
            raise ParameterError(f"split must be 'train' or 'valid', got {split!r}.")
        if rows < 1:
            raise ParameterError(f"rows must be at least 1, got {rows}.")
        self.data, self.rows, self.split = data, rows, split
        self._loader = data.train if split == "train" else data.valid
        if len(self._loader) == 0:
            raise ParameterError(
                f"the {split} loader has no batches; prepare the data with more chips "
                "(or val_split_pct > 0 for split='valid')."
            )
        self._batches: list[Any] = []  # the first `rows` chips of each batch drawn so far
        self._iterator: Iterator[Any] | None = None
        count = None if split == "train" else len(self._loader)
        self.pager = Pager(self._draw, count, name="batch", cache=True)
        self.widget = widgets.VBox([self.pager.controls, self.pager.image])
        self.widget.add_class("cdtools-batch-viewer")  # a handle for pages and tests

    def _draw(self, page: int) -> Figure:
        while len(self._batches) <= page:
            self._batches.append(self._next_batch())
        return self.data.draw_batch(self._batches[page], rows=self.rows)

    def _next_batch(self) -> Any:
        """The next batch of the loader, starting a new epoch when one ends."""
        for _ in range(2):
            if self._iterator is None:
                self._iterator = iter(self._loader)
            try:
                (before, after), mask = next(self._iterator)
            except StopIteration:
                self._iterator = None
                continue
            n = self.rows
            return (before[:n], after[:n]), mask[:n]
        raise ParameterError(f"the {self.split} loader gave no batch; check the chips folder.")
