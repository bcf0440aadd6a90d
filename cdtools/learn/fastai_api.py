"""The parts of fastai that cdtools uses, imported in this one place.

fastai 2.8 applies ``torch.jit.script`` at import time, which torch deprecates; the
warning says nothing a cdtools user can act on, so it is silenced here, once. Three
callback modules are imported for what they add to ``Learner``: ``to_fp16`` (fp16), the
progress bar and results table (progress), ``fit_one_cycle``, ``fine_tune`` and
``lr_find`` (schedule).
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", FutureWarning)
    import fastai.callback.fp16
    import fastai.callback.progress
    import fastai.callback.schedule  # noqa: F401
    from fastai.callback.core import Callback
    from fastai.callback.tracker import EarlyStoppingCallback, TrackerCallback
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    from fastai.learner import Learner, Metric
    from fastai.losses import CrossEntropyLossFlat
    from fastai.metrics import accuracy
    from fastai.torch_core import default_device
    from fastai.vision.learner import create_vision_model, model_meta, vision_learner

__all__ = [
    "Callback",
    "CrossEntropyLossFlat",
    "DataLoader",
    "DataLoaders",
    "EarlyStoppingCallback",
    "Learner",
    "Metric",
    "TrackerCallback",
    "accuracy",
    "create_vision_model",
    "default_device",
    "model_meta",
    "vision_learner",
]
