"""Trainable: what ChangeDetector and LandCoverClassifier share, written once.

A trainable holds a model, its spec (what the model package stores), the DataLoaders it
learns from and a fastai ``Learner`` over them. It gives both facades the same verbs with
the same signatures: ``lr_find``, ``fit`` (one-cycle or constant rate, early stopping,
a checkpoint of the best epoch, precision, weight averaging), ``freeze``, ``unfreeze``,
``plot_losses``, ``save`` and ``from_model(path, *, data=None)``. A subclass says how its
model is built from a spec, what its data must match, how it scores itself for the
package, and what a fit records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import torch

from cdtools.errors import CdtoolsError, ParameterError
from cdtools.io.raster import PathLike
from cdtools.learn.autocast import BFloat16Training
from cdtools.learn.averaging import WeightAveraging
from cdtools.learn.checkpoint import SafetensorsCheckpoint
from cdtools.learn.epoch_log import readable_log
from cdtools.learn.fastai_api import EarlyStoppingCallback, Learner
from cdtools.learn.package import PackageError, package_folder, read_package, write_package
from cdtools.learn.precision import PRECISIONS, Precision, on_gpu, resolve_precision

T = TypeVar("T", bound="Trainable")


class Trainable:
    """A model, its spec, its data and a fastai Learner; see the module docstring."""

    #: What the facade is called in messages, and the function that makes its data.
    kind: ClassVar[str] = "model"
    data_maker: ClassVar[str] = "prepare_data"
    #: What ``fit(monitor=...)`` may watch besides the losses.
    monitors: ClassVar[tuple[str, ...]] = ()
    spec_class: ClassVar[type] = object

    spec: Any
    model: torch.nn.Module
    data: Any
    learn: Learner | None

    def _attach(self, spec: Any, model: torch.nn.Module, data: Any) -> None:
        self.spec, self.model, self.data = spec, model, data
        self.learn = None
        self._lr: float | None = None  # the last lr_find suggestion

    # ----------------------------------------------------------------- training
    def _learner(self) -> Learner:
        if self.learn is None:
            raise CdtoolsError(
                f"this {self.kind} has no training data; rebuild it with "
                f"{type(self).__name__}.from_model(path, data={self.data_maker}(...))."
            )
        return self.learn

    def lr_find(self, *, show: bool = True, num_it: int = 100) -> float:
        """Run fastai's learning-rate finder; plots the curve and returns the suggestion,
        which ``fit`` then uses when it is given no rate."""
        learn = self._learner()
        with readable_log(learn):
            suggestion = learn.lr_find(num_it=num_it, show_plot=show)
        self._lr = float(suggestion.valley)
        return self._lr

    def fit(
        self,
        epochs: int,
        *,
        lr: float | None = None,
        one_cycle: bool = True,
        early_stopping: bool | int = False,
        checkpoint: bool = True,
        monitor: str = "valid_loss",
        precision: Precision = "auto",
        average: bool = False,
    ) -> None:
        """Train, printing the losses and the validation scores per epoch (fastai's bar and
        table in Jupyter or a terminal; one line per epoch when output goes to a file).

        Args:
            epochs: passes over the training data.
            lr: learning rate; default the last ``lr_find`` suggestion, else for a
                ChangeDetector 3e-3 (the recipe's one-cycle peak) and for a
                LandCoverClassifier the suggestion of an ``lr_find`` run now.
            one_cycle: the one-cycle schedule (else a constant rate).
            early_stopping: stop when ``monitor`` has not improved for 3 epochs (or this many).
            checkpoint: keep the best epoch by ``monitor`` on disk and return to it at the end.
            monitor: "valid_loss", "train_loss" or one of the facade's scores.
            precision: "fp32"; "bf16" (autocast, channels-last: on CPUs with AVX-512 BF16
                several times faster than fp32); "fp16" (fastai's mixed precision, GPUs
                only); "auto" is fp16 on a GPU, bf16 on CPUs that have it, fp32 otherwise.
            average: validate, checkpoint and end on an exponential moving average of the
                weights (:class:`cdtools.learn.averaging.WeightAveraging`) instead of the
                last step's.
        """
        learn = self._learner()
        if epochs < 1:
            raise ParameterError(f"epochs must be at least 1, got {epochs}.")
        if monitor not in ("valid_loss", "train_loss", *self.monitors):
            raise ParameterError(
                f"monitor must be valid_loss, train_loss or one of {self.monitors}, got "
                f"{monitor!r}."
            )
        callbacks: list[Any] = []
        if early_stopping:
            patience = 3 if early_stopping is True else int(early_stopping)
            callbacks.append(EarlyStoppingCallback(monitor=monitor, patience=patience))
        if checkpoint:
            callbacks.append(SafetensorsCheckpoint(monitor=monitor))
        if average:
            callbacks.append(WeightAveraging())
        self._check_training_data()
        precision = self._training_precision(precision)
        if precision == "fp16":
            learn.to_fp16()
        elif precision == "bf16":
            callbacks.append(BFloat16Training())
        lr = lr or self._lr or self._default_lr()
        try:
            with readable_log(learn):
                if one_cycle:
                    learn.fit_one_cycle(epochs, lr, cbs=callbacks)
                else:
                    learn.fit(epochs, lr, cbs=callbacks)
        finally:
            if precision == "fp16":
                learn.to_fp32()
        options = {"one_cycle": one_cycle, "precision": precision, "average": average}
        self._record_fit(epochs, lr, options)

    def _training_precision(self, precision: Precision) -> Literal["fp32", "bf16", "fp16"]:
        if precision not in PRECISIONS:
            raise ParameterError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
        device = str(next(self.model.parameters()).device)
        resolved = resolve_precision(precision, device)
        if resolved == "fp16" and not on_gpu(device):
            raise ParameterError(
                "precision='fp16' trains on a GPU only; on this CPU use 'bf16' or 'fp32'."
            )
        return resolved  # type: ignore[return-value]

    def freeze(self) -> None:
        """Train only the layers after the backbone."""
        self._learner().freeze()

    def unfreeze(self) -> None:
        """Train the backbone too (after a few epochs with it frozen)."""
        self._learner().unfreeze()

    def plot_losses(self) -> Any:
        """Training and validation loss per batch (fastai's recorder plot)."""
        return self._learner().recorder.plot_loss()

    # ------------------------------------------------------------------ package
    def save(self, name_or_path: PathLike, *, zip: bool = False, overwrite: bool = False) -> Path:
        """Write a model package (folder with model.safetensors and model.json; .zip if asked).

        A bare name goes to ``<data folder>/models/<name>``, as arcgis.learn does. The
        validation scores go into model.json (computed now when they have not been).
        """
        path = package_folder(name_or_path, self.data.path if self.data is not None else None)
        if self.learn is not None and not self.spec.metrics:
            self._score()
        return write_package(
            path, self.spec, self.model.state_dict(), zip_too=zip, overwrite=overwrite
        )

    @classmethod
    def from_model(cls: type[T], path: PathLike, *, data: Any = None) -> T:
        """Rebuild from a model package (folder, .zip or model.json); never unpickles.

        ``data`` (DataLoaders made the way the model's were) attaches data to train on
        or score against; without it the model predicts only.
        """
        spec, state = read_package(path, spec_class=cls.spec_class)
        model = cls._build(spec, path)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            summary = str(err).splitlines()[0]
            raise PackageError(f"{path}'s weights do not fit its model.json ({summary}).") from None
        model.eval()
        trainable = cls.__new__(cls)
        trainable._setup(spec, model, data)
        return trainable

    # ------------------------------------------------------- what subclasses say
    @classmethod
    def _build(cls, spec: Any, path: PathLike) -> torch.nn.Module:
        """The untrained model a spec describes (a PackageError when this cdtools cannot)."""
        raise NotImplementedError

    def _setup(self, spec: Any, model: torch.nn.Module, data: Any) -> None:
        """Attach the model and, with data that match it, a Learner."""
        raise NotImplementedError

    def _check_training_data(self) -> None:
        """Raise or warn when the training data cannot teach the model (default: nothing)."""

    def _default_lr(self) -> float:
        raise NotImplementedError

    def _score(self) -> Any:
        """Score on the validation data, keeping the figures in ``spec.metrics``."""
        raise NotImplementedError

    def _record_fit(self, epochs: int, lr: float, options: dict[str, Any]) -> None:
        raise NotImplementedError
