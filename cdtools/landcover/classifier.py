"""LandCoverClassifier: which EuroSAT class a patch shows, as a fastai Learner facade.

Train with ``lr_find`` and ``fit`` on DataLoaders from
:func:`cdtools.landcover.data.prepare_landcover_data`, look with ``show_results``, score
with ``confusion_matrix`` and ``per_class_accuracy``, keep it with ``save`` /
``from_model`` (safetensors + JSON, like the change model), use it with ``predict``.
The network is fastai's ``vision_learner`` on a torchvision ResNet; ImageNet weights
come the way the change model's do (:func:`cdtools.models.backbone.make_encoder`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import torch

from cdtools.errors import CdtoolsError, GridError, ParameterError
from cdtools.io.raster import PathLike
from cdtools.landcover.data import LandCoverDataLoaders, image_grid, prepare_landcover_data
from cdtools.learn.fastai_api import (
    CrossEntropyLossFlat,
    Learner,
    accuracy,
    create_vision_model,
    model_meta,
    vision_learner,
)
from cdtools.learn.package import (
    ClassifierSpec,
    PackageError,
)
from cdtools.learn.trainable import Trainable
from cdtools.learn.tta import DIHEDRAL, dihedral
from cdtools.models.backbone import Pretrained, load_resnet_body

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["ClassifierSpec", "LandCoverClassifier", "prepare_landcover_data"]

log = logging.getLogger(__name__)

ResNet = Literal["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
BACKBONES: tuple[str, ...] = get_args(ResNet)


class LandCoverClassifier(Trainable):
    """A land-cover patch classifier (EuroSAT classes) with everything to train and use it.

    Args:
        data: DataLoaders from :func:`prepare_landcover_data` (None only via ``from_model``).
        backbone: a torchvision ResNet: "resnet18", "resnet34", "resnet50", "resnet101"
            or "resnet152".
        pretrained: "auto" (ImageNet weights from the manifest or the torch cache, else a
            warning and random initialisation), True (ImageNet or an error), False, or a
            weight file; see :func:`cdtools.models.backbone.make_encoder`.

    With pretrained weights the backbone starts frozen (``unfreeze()`` after a few epochs,
    or ``fine_tune``). New layers are initialised from torch's global generator: call
    ``torch.manual_seed`` first for the same model on every run.

    Example:
        >>> dls = prepare_landcover_data("patches")  # doctest: +SKIP
        >>> classifier = LandCoverClassifier(dls, pretrained=False)  # doctest: +SKIP
        >>> classifier.fit(3, lr=1e-3)  # doctest: +SKIP
        >>> classifier.per_class_accuracy()  # doctest: +SKIP
    """

    kind = "classifier"
    data_maker = "prepare_landcover_data"
    monitors = ("accuracy",)
    spec_class = ClassifierSpec

    def __init__(
        self,
        data: LandCoverDataLoaders,
        *,
        backbone: ResNet = "resnet18",
        pretrained: Pretrained = "auto",
    ) -> None:
        spec = ClassifierSpec(
            backbone=_check_backbone(backbone),
            classes=data.classes,
            colours=data.colours,
            bands=data.bands,
            input_size=data.size,
            stats=data.stats,
        )
        learn = vision_learner(
            data,
            _arch(backbone),
            normalize=False,  # the DataLoaders normalise with their own statistics
            n_out=len(spec.classes),
            pretrained=False,  # ImageNet weights come from cdtools' manifest, below
            loss_func=CrossEntropyLossFlat(),
            metrics=accuracy,
            path=data.path,
            model_dir="models",
        )
        spec.training["weights"] = load_resnet_body(learn.model[0], backbone, pretrained=pretrained)
        self._attach(spec, learn.model, data)
        self.learn = learn
        if spec.training["weights"] != "random":
            learn.freeze()

    def _setup(self, spec: ClassifierSpec, model: torch.nn.Module, data: Any) -> None:
        self._attach(spec, model, data)
        if data is None:
            return
        if tuple(data.classes) != spec.classes or data.size != spec.input_size:
            raise ParameterError(
                f"the data has classes {list(data.classes)} at {data.size} px but the classifier "
                f"{list(spec.classes)} at {spec.input_size} px; prepare the data to match."
            )
        if data.stats.mean != spec.stats.mean or data.stats.std != spec.stats.std:
            raise ParameterError(
                "the data are normalised with other statistics than the classifier's; prepare "
                "them with prepare_landcover_data(..., stats=classifier.spec.stats)."
            )
        self.learn = Learner(
            data,
            model,
            loss_func=CrossEntropyLossFlat(),
            metrics=accuracy,
            splitter=model_meta[_arch(spec.backbone)]["split"],
            path=data.path,
            model_dir="models",
        )

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names, in the order of the model's outputs."""
        return self.spec.classes

    @property
    def colours(self) -> tuple[str, ...]:
        """One hex colour per class."""
        return self.spec.colours

    # ----------------------------------------------------------------- training
    def _default_lr(self) -> float:
        return self.lr_find(show=False)

    def fine_tune(self, epochs: int, *, lr: float = 2e-3, freeze_epochs: int = 1) -> None:
        """fastai's recipe for pretrained backbones: the head alone first, then everything."""
        self._learner().fine_tune(epochs, base_lr=lr, freeze_epochs=freeze_epochs)
        self._record_fit(epochs + freeze_epochs, lr, {"fine_tune": True})

    def _record_fit(self, epochs: int, lr: float, options: dict[str, Any]) -> None:
        data, training = self.data, self.spec.training
        training.update(
            source=Path(data.path).name,
            train_patches=len(data.train_ds),
            valid_patches=len(data.valid_ds),
            last_fit={"epochs": epochs, "lr": lr, **options},
            epochs_total=training.get("epochs_total", 0) + epochs,
        )
        self.spec.metrics = {}

    # --------------------------------------------------------------- evaluation
    def _validation(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """True classes, predicted probabilities and 0-255 images of the validation patches."""
        learn = self._learner()
        self.model.eval()
        targets, probs, images = [], [], []
        with torch.inference_mode():
            for x, y in learn.dls.valid:
                probs.append(torch.softmax(self.model(x).float(), 1).cpu().numpy())
                targets.append(y.cpu().numpy())
                images.append(self.spec.stats.denormalise(x.cpu().numpy()))
        if not targets:
            raise CdtoolsError(
                "the validation set is empty; prepare the data with val_split_pct > 0."
            )
        return (
            np.concatenate(targets),
            np.concatenate(probs),
            np.concatenate(images),
        )

    def confusion_matrix(self) -> pd.DataFrame:
        """Counts of validation patches: rows the true class, columns the predicted class."""
        import pandas as pd

        truth, probs, _ = self._validation()
        n = len(self.classes)
        counts = np.bincount(truth * n + probs.argmax(1), minlength=n * n).reshape(n, n)
        return pd.DataFrame(
            counts,
            index=pd.Index(self.classes, name="true"),
            columns=pd.Index(self.classes, name="predicted"),
        )

    def per_class_accuracy(self) -> pd.DataFrame:
        """Per class: accuracy (share of its validation patches recognised), precision, support.

        Also kept in the classifier's metrics, which ``save`` writes to model.json.
        """
        import pandas as pd

        counts = self.confusion_matrix().to_numpy()
        hits, support, predicted = np.diag(counts), counts.sum(1), counts.sum(0)
        table = pd.DataFrame(
            {
                "accuracy": hits / np.maximum(support, 1),
                "precision": hits / np.maximum(predicted, 1),
                "support": support,
            },
            index=pd.Index(self.classes, name="class"),
        )
        self.spec.metrics = {
            "accuracy": float(hits.sum() / max(counts.sum(), 1)),
            "per_class_accuracy": {k: round(float(v), 4) for k, v in table["accuracy"].items()},
            "valid_patches": int(counts.sum()),
        }
        return table

    def accuracy(self) -> float:
        """Share of validation patches classified correctly."""
        self.per_class_accuracy()
        return self.spec.metrics["accuracy"]

    def show_results(self, rows: int = 2, *, columns: int = 4) -> Figure:
        """``rows`` x ``columns`` validation patches titled "predicted (confidence)", green
        when right, red when wrong."""
        truth, probs, images = self._validation()
        n = min(rows * columns, len(truth))
        guess = probs.argmax(1)
        titles = [
            f"{self.classes[guess[i]]} ({probs[i, guess[i]]:.2f})\ntrue: {self.classes[truth[i]]}"
            for i in range(n)
        ]
        colours = ["tab:green" if guess[i] == truth[i] else "tab:red" for i in range(n)]
        return image_grid(images[:n], titles, colours=colours, columns=columns)

    # ------------------------------------------------------------------ package
    def _score(self) -> Any:
        return self.per_class_accuracy()

    @classmethod
    def _build(cls, spec: ClassifierSpec, path: PathLike) -> torch.nn.Module:
        if spec.backbone not in BACKBONES:
            raise PackageError(
                f"{path} holds a {spec.backbone!r} classifier; this cdtools knows {BACKBONES}."
            )
        return create_vision_model(_arch(spec.backbone), len(spec.classes), pretrained=False)

    # ------------------------------------------------------------------ predict
    def predict(
        self, images: np.ndarray, *, batch_size: int = 64, tta: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Classes and probabilities of a batch of patches.

        Args:
            images: ``(n, bands, h, w)`` (or one ``(bands, h, w)``) in raw 0-255 units,
                resized to the classifier's input size; NaN (no data) enters the network
                as the band's mean.
            batch_size: patches per forward pass.
            tta: average the probabilities over the 8 flips and quarter turns of each
                patch (top-down imagery has no "up"); 8 times slower, a little surer.

        Returns:
            ``(indices, probabilities)``: ``(n,)`` int64 class indices into ``classes``
            and ``(n, classes)`` float32 probabilities.

        Example:
            >>> index, prob = classifier.predict(np.full((1, 3, 64, 64), 90.0))  # doctest: +SKIP
            >>> classifier.classes[index[0]], round(float(prob[0].max()), 2)  # doctest: +SKIP
            ('Forest', 0.97)
        """
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[1] != self.spec.in_channels:
            raise GridError(
                f"patches of shape {images.shape} do not fit the classifier, which takes "
                f"(n, {self.spec.in_channels}, h, w) with bands {list(self.spec.bands)}; "
                "pick those bands of the imagery."
            )
        size = self.spec.input_size
        device = next(self.model.parameters()).device
        self.model.eval()
        probs = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                # NormStats broadcasts over the leading batch axis; NaN becomes the mean (0).
                x = np.nan_to_num(self.spec.stats.normalise(images[start : start + batch_size]))
                batch = torch.from_numpy(x).to(device)
                if batch.shape[-2:] != (size, size):
                    batch = torch.nn.functional.interpolate(
                        batch, size=(size, size), mode="bilinear", antialias=True
                    )
                views = [dihedral(batch, i) for i in range(len(DIHEDRAL))] if tta else [batch]
                prob = sum(torch.softmax(self.model(v).float(), 1) for v in views) / len(views)
                probs.append(prob.cpu().numpy())
        prob = np.concatenate(probs) if probs else np.zeros((0, len(self.classes)), np.float32)
        return prob.argmax(1).astype(np.int64), prob.astype(np.float32)


def _check_backbone(backbone: str) -> str:
    if backbone not in BACKBONES:
        raise ParameterError(f"backbone must be one of {BACKBONES}, got {backbone!r}.")
    return backbone


def _arch(backbone: str) -> Any:
    from torchvision import models

    return getattr(models, _check_backbone(backbone))
