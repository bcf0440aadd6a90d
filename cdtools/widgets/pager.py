"""Pager: figures one page at a time, as a PNG picture with previous and next buttons.

The panels of :mod:`cdtools.widgets` draw each page with matplotlib and show it as PNG
bytes in an ``ipywidgets.Image`` (not an ``Output``), so what is shown is plain state
that tests can read and any Jupyter frontend renders.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as widgets

from cdtools.errors import ParameterError
from cdtools.widgets.panel import Panel

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 72  # pictures of a few hundred pixels a side: quick to draw and to send


def to_png(fig: Figure, *, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


class Pager:
    """Previous and next buttons, a position label and the picture of the current page.

    Args:
        draw: draws page ``i`` (from 0) as a matplotlib figure.
        count: how many pages, or None for no end (next is then never disabled). With 0
            pages, ``draw(0)`` draws the picture shown instead and both buttons are disabled.
        name: what a page is, for the label: "batch 2 of 5".
        cache: keep each page's PNG once drawn, so that going back shows the very same
            picture without drawing it again (:meth:`redraw` draws the current one anew).
        on_show: called with the page after each page is shown, to update other widgets.

    Attributes: ``image`` (``ipywidgets.Image``), ``label``, ``previous_button``,
    ``next_button``, ``controls`` (those three in a row) and ``page``.

    Example:
        >>> pager = Pager(lambda i: show_pairs(...), 5, name="batch")  # doctest: +SKIP
        >>> pager.next(); pager.page  # doctest: +SKIP
        1
    """

    def __init__(
        self,
        draw: Callable[[int], Figure],
        count: int | None,
        *,
        name: str = "page",
        cache: bool = False,
        on_show: Callable[[int], None] | None = None,
    ) -> None:
        if count is not None and count < 0:
            raise ParameterError(f"count must be a number of pages (0 or more), got {count}.")
        self.draw, self.count, self.name = draw, count, name
        self.on_show = on_show
        self._cache: dict[int, bytes] | None = {} if cache else None
        self.page = 0
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.label = widgets.Label()
        self.previous_button = widgets.Button(description="previous", icon="arrow-left")
        self.next_button = widgets.Button(description="next", icon="arrow-right")
        self.previous_button.on_click(lambda _: self.previous())
        self.next_button.on_click(lambda _: self.next())
        self.controls = widgets.HBox([self.previous_button, self.label, self.next_button])
        self.show(0)

    def show(self, page: int) -> None:
        """Show page ``page`` (from 0)."""
        last = None if self.count is None else max(self.count - 1, 0)
        if page < 0 or (last is not None and page > last):
            allowed = f"0 to {last}" if last is not None else "0 or more"
            raise ParameterError(f"there is no {self.name} {page}; pass a page from {allowed}.")
        self.page = page
        png = self._cache.get(page) if self._cache is not None else None
        if png is None:
            png = to_png(self.draw(page))
            if self._cache is not None:
                self._cache[page] = png
        self.image.value = png
        self.previous_button.disabled = page == 0
        self.next_button.disabled = last is not None and page >= last
        if self.count == 0:
            self.label.value = f"no {self.name}s"
        else:
            of = f" of {self.count}" if self.count is not None else ""
            self.label.value = f"{self.name} {page + 1}{of}"
        if self.on_show is not None:
            self.on_show(page)

    def next(self) -> None:
        """Show the next page (nothing happens on the last)."""
        if not self.next_button.disabled:
            self.show(self.page + 1)

    def previous(self) -> None:
        """Show the previous page (nothing happens on the first)."""
        if self.page > 0:
            self.show(self.page - 1)

    def redraw(self) -> None:
        """Draw the current page again (after what ``draw`` depends on has changed)."""
        if self._cache is not None:
            self._cache.pop(self.page, None)
        self.show(self.page)


class PagedPanel(Panel):
    """A panel whose picture is a :class:`Pager`'s: paging is the pager's, shown here."""

    pager: Pager

    @property
    def page(self) -> int:
        """The page shown, from 0."""
        return self.pager.page

    @property
    def image(self) -> widgets.Image:
        """The picture shown (PNG bytes in ``image.value``)."""
        return self.pager.image

    def show(self, page: int) -> None:
        """Show page ``page`` (from 0)."""
        self.pager.show(page)

    def next(self) -> None:
        """Show the next page."""
        self.pager.next()

    def previous(self) -> None:
        """Show the page before (the same picture as when it was first shown)."""
        self.pager.previous()
