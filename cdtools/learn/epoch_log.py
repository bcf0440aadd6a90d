"""Training logs a person can read: one line per epoch when output is not a terminal.

fastai's progress bar redraws itself on every batch. In Jupyter and in a terminal that is
one bar; written to a log file (``make demo > log``, ``cdtools train`` under a job runner)
every redraw is kept, tens of kilobytes of bars for a short fit. There the bar is left
out and each epoch's figures are printed as one aligned line under one header.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from cdtools.learn.fastai_api import Learner


def bars_would_pile_up(stream: TextIO | None = None) -> bool:
    """Whether a progress bar on ``stream`` (default stdout) would be written out redraw
    by redraw: outside IPython/Jupyter, and not a terminal."""
    if "IPython" in sys.modules:
        from IPython import get_ipython

        if get_ipython() is not None:
            return False
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


class EpochLines:
    """A fastai ``learn.logger``: the header once, then one line of figures per epoch.

    Example:
        >>> lines = EpochLines(lambda: ["epoch", "train_loss", "time"])
        >>> lines([0, 0.123456, "00:04"])
        epoch     train_loss  time
        0         0.123456    00:04
    """

    def __init__(self, names: Callable[[], Sequence[str]], *, write: Callable[[str], Any] = print):
        self.names, self.write, self.widths = names, write, [0]

    def __call__(self, log: Sequence[Any]) -> None:
        cells = [f"{v:.6f}" if isinstance(v, float) else str(v) for v in log]
        if self.widths == [0]:
            header = [str(n) for n in self.names()]
            self.widths = [max(len(h), 8) for h in header]
            self._line(header)
        self._line(cells)

    def _line(self, cells: Sequence[str]) -> None:
        widths = self.widths + [0] * (len(cells) - len(self.widths))
        padded = [c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False)]
        self.write("  ".join([*padded, cells[-1]]) if cells else "")
        if hasattr(sys.stdout, "flush"):
            sys.stdout.flush()


@contextmanager
def readable_log(learn: Learner) -> Iterator[None]:
    """Inside: no progress bar and one line per epoch, where bars would pile up in a log;
    elsewhere fastai's own bar and table, unchanged."""
    silenced = getattr(learn.logger, "__name__", "") == "noop"  # fastai's no_logging()
    if silenced or not hasattr(learn, "progress") or not bars_would_pile_up():
        yield
        return
    logger = learn.logger
    learn.logger = EpochLines(lambda: learn.recorder.metric_names)
    try:
        with learn.no_bar():
            yield
    finally:
        learn.logger = logger
