"""Checkpoints during training, kept as safetensors (fastai's own would be pickles)."""

from __future__ import annotations

import logging
from pathlib import Path

from cdtools.io.raster import atomic_path
from cdtools.learn.fastai_api import TrackerCallback

log = logging.getLogger(__name__)


class SafetensorsCheckpoint(TrackerCallback):
    """Keep the best epoch by ``monitor`` in models/checkpoint.safetensors; reload it at the end."""

    order = TrackerCallback.order + 1

    def before_fit(self) -> None:
        super().before_fit()
        self.file = Path(self.learn.path) / self.learn.model_dir / "checkpoint.safetensors"
        self.saved = False

    def after_epoch(self) -> None:
        super().after_epoch()
        if self.new_best:
            from safetensors.torch import save_file

            state = {
                k: v.detach().cpu().contiguous() for k, v in self.learn.model.state_dict().items()
            }
            with atomic_path(self.file) as tmp:
                save_file(state, str(tmp))
            self.saved = True

    def after_fit(self) -> None:
        if self.saved:
            from safetensors.torch import load_file

            self.learn.model.load_state_dict(load_file(self.file))
            log.info("returned to the best epoch by %s (%.4f)", self.monitor, self.best)
