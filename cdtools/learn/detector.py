"""ChangeDetector: a fastai Learner facade for siamese change-detection models.

Train with ``lr_find`` and ``fit``, look with ``show_results``, score with
``precision_recall_score``, pick a threshold with ``tune_threshold``, keep it with
``save`` / ``from_model`` (safetensors + JSON), use it with ``predict``.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from cdtools.chips.data import ChangeDataLoaders
from cdtools.errors import OutputExistsError, ParameterError
from cdtools.io.pair import load_pair, padded_pair
from cdtools.io.raster import PathLike
from cdtools.learn.fastai_api import Learner
from cdtools.learn.losses import BatchBalancedContrastiveLoss, BCEDiceLoss
from cdtools.learn.metrics import (
    SCORES,
    ChangeScore,
    confusion,
    probability_histogram,
    scores,
    supported_f1_threshold,
)
from cdtools.learn.package import ModelSpec, PackageError
from cdtools.learn.precision import Precision
from cdtools.learn.trainable import Trainable
from cdtools.models import ARCHITECTURES, Arch, default_backbone, to_probability
from cdtools.models.backbone import Pretrained

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

#: The default recipe, chosen by measurement on real data (benchmarks/recipe_airchange.py
#: and benchmarks/accuracy_real.py): a from-scratch FC-Siam-conc, one-cycle at 3e-3,
#: trained in bf16 on CPUs that have it.
DEFAULT_ARCH: Arch = "fc_siam_conc"
DEFAULT_LR = 3e-3


class ChangeDetector(Trainable):
    """A siamese change-detection model with everything needed to train and use it.

    Args:
        data: DataLoaders from :func:`cdtools.prepare_data` (None only via ``from_model``).
        arch: a name in :data:`cdtools.models.ARCHITECTURES`: "fc_siam_conc" (the default,
            chosen by measurement on real data: benchmarks/results/accuracy_real.json),
            "fc_siam_diff", "fc_ef", "tinycd", "siamese_unet", "stanet" or "bit".
        backbone: the encoder of siamese_unet, stanet, bit (an smp name, e.g. "resnet18",
            "resnet34", "efficientnet-b0") and tinycd; default each architecture's own
            (resnet18; efficientnet-b4 for tinycd; the FC networks have no other).
        pretrained: "auto", True, False or a weight file (see ``models.backbone.make_encoder``).
        loss: a loss module; default BCE + Dice (STANet: batch-balanced contrastive loss).
        **arch_kwargs: options of the architecture (fusion="concat", attention_type="BAM", ...).

    New layers are initialised from torch's global generator: call ``torch.manual_seed``
    first for the same model on every run.

    Example:
        >>> dls = prepare_data("chips")  # doctest: +SKIP
        >>> cd = ChangeDetector(dls, arch="siamese_unet", backbone="resnet18")  # doctest: +SKIP
        >>> cd.fit(5, lr=1e-3)  # doctest: +SKIP
        >>> change = cd.predict("before.tif", "after.tif", out_path="change.tif")  # doctest: +SKIP
    """

    kind = "detector"
    data_maker = "prepare_data"
    monitors = SCORES
    spec_class = ModelSpec

    def __init__(
        self,
        data: ChangeDataLoaders,
        *,
        arch: Arch = DEFAULT_ARCH,
        backbone: str | None = None,
        pretrained: Pretrained = "auto",
        loss: torch.nn.Module | None = None,
        **arch_kwargs: Any,
    ) -> None:
        if arch not in ARCHITECTURES:
            raise ParameterError(f"arch must be one of {sorted(ARCHITECTURES)}, got {arch!r}.")
        backbone = backbone or default_backbone(arch)
        spec = ModelSpec(
            arch=arch,
            backbone=backbone,
            in_channels=data.n_bands,
            chip_size=data.chip_size,
            stats=data.stats,
            arch_kwargs=dict(arch_kwargs),
            bands=data.bands,
            downsample=data.downsample,
        )
        try:
            model = ARCHITECTURES[arch](
                spec.in_channels, backbone=backbone, pretrained=pretrained, **arch_kwargs
            )
        except (TypeError, ValueError) as err:
            raise ParameterError(f"{arch} does not take these options: {err}") from None
        spec.training["weights"] = model.weights_source
        self._setup(spec, model, data, loss)
        if model.weights_source != "random":
            self.learn.freeze()  # train the new layers first; unfreeze() for the backbone

    def _setup(
        self,
        spec: ModelSpec,
        model: torch.nn.Module,
        data: ChangeDataLoaders | None,
        loss: Any = None,
    ) -> None:
        self._attach(spec, model, data)
        if data is None:
            return
        if data.n_bands != spec.in_channels:
            raise ParameterError(
                f"the data has {data.n_bands} bands but the model takes {spec.in_channels}; "
                "prepare the data with the model's bands."
            )
        if data.downsample != spec.downsample:
            raise ParameterError(
                f"the model was trained with downsample={spec.downsample} and these data are "
                f"prepared with downsample={data.downsample}; prepare them with "
                f"prepare_data(..., downsample={spec.downsample})."
            )
        if data.stats.per_scene != spec.stats.per_scene:
            norm = "scene" if spec.stats.per_scene else "dataset"
            raise ParameterError(
                f"the model was trained with norm={norm!r} and these data are normalised the "
                f"other way; prepare them with prepare_data(..., norm={norm!r})."
            )
        if loss is None:
            loss = (
                BatchBalancedContrastiveLoss(margin=model.margin)
                if model.output == "distance"
                else BCEDiceLoss()
            )
        metrics = [ChangeScore(s, self.probability, lambda: self.spec.threshold) for s in SCORES]
        self.learn = Learner(
            data,
            model,
            loss_func=loss,
            metrics=metrics,
            splitter=_split_encoder,
            path=data.path,
            model_dir="models",
        )

    @property
    def threshold(self) -> float:
        """Probability above which a pixel is change."""
        return self.spec.threshold

    def probability(self, output: torch.Tensor) -> torch.Tensor:
        """The model's raw output as change probability in [0, 1]."""
        return to_probability(self.model, output)

    # ----------------------------------------------------------------- training
    def _check_training_data(self) -> None:
        self.data.train_ds.check_labels()

    def _default_lr(self) -> float:
        return DEFAULT_LR  # the recipe's one-cycle peak

    def _record_fit(self, epochs: int, lr: float, options: dict[str, Any]) -> None:
        data, training = self.data, self.spec.training
        training.update(
            sources=[Path(p).name for p in data.sources],
            train_chips=len(data.train_ds),
            valid_chips=len(data.valid_ds),
            last_fit={"epochs": epochs, "lr": lr, **options},
            epochs_total=training.get("epochs_total", 0) + epochs,
        )
        self.spec.metrics = {}  # scores of the weights before this fit: save scores again

    # --------------------------------------------------------------- evaluation
    def _validation(self, *, start: int = 0) -> Any:
        """(before, after, mask, probability) per validation batch from batch ``start`` on
        (those before it are read but not predicted), model in eval mode."""
        learn = self._learner()
        self.model.eval()
        with torch.inference_mode():
            for (before, after), mask in itertools.islice(learn.dls.valid, start, None):
                yield before, after, mask, self.probability(self.model((before, after)))[:, 0]

    def precision_recall_score(self) -> pd.DataFrame:
        """Precision, recall, F1, IoU and support of NoChange and Change over the validation set."""
        import pandas as pd

        matrix = torch.zeros(2, 2, dtype=torch.long)
        for _, _, mask, prob in self._validation():
            matrix += confusion(prob, mask, self.threshold)
        table = pd.DataFrame(scores(matrix))
        self.spec.metrics = {"threshold": self.threshold, **table.to_dict()}
        return table

    def tune_threshold(self, *, bins: int = 200) -> float:
        """The threshold nearest 0.5 whose validation F1 of change is as good as the best
        one as far as the validation chips can tell; the detector keeps it.

        The F1-best threshold of a small validation set moves with the chips drawn for
        it; a threshold is kept when its F1 shortfall is within one bootstrap standard
        deviation (over validation chips) of the best, and of those the one nearest the
        model's own decision point, 0.5, is taken (:func:`supported_f1_threshold`).
        """
        counts = self.validation_histograms(bins=bins)
        threshold = supported_f1_threshold(counts)
        if threshold != self.spec.threshold:
            self.spec.metrics = {}  # scored at the old threshold: save scores again
        self.spec.threshold = threshold
        return threshold

    def validation_histograms(self, *, bins: int = 200) -> np.ndarray:
        """``(chips, 2, bins)`` counts of each validation chip's labelled pixels by change
        probability: row 0 no change, row 1 change (what thresholds are tuned from)."""
        chips = [
            probability_histogram(chip_prob, chip_mask, bins=bins)
            for _, _, mask, prob in self._validation()
            for chip_mask, chip_prob in zip(mask, prob, strict=True)
        ]
        if not chips:
            raise ParameterError(
                "there are no validation chips to tune the threshold on; prepare the data "
                "with val_split_pct > 0 (or a val/ folder)."
            )
        return np.stack(chips)

    def show_results(
        self, rows: int = 4, *, threshold: float | None = None, batch: int = 0
    ) -> Figure:
        """before | after | truth | prediction of validation chips (FP and FN in own colours).

        Args:
            rows: chips shown, the first of the batch.
            threshold: probability above which a pixel counts as change (default the
                detector's ``threshold``).
            batch: which validation batch, from 0.

        Example:
            >>> detector.show_results(rows=2, threshold=0.3, batch=1)  # doctest: +SKIP
        """
        return self.draw_results(self.validation_batch(batch=batch), rows=rows, threshold=threshold)

    def validation_batch(self, *, batch: int = 0) -> tuple[torch.Tensor, ...]:
        """(before, after, mask, probability) of validation batch ``batch``; the model runs
        on that batch only. :class:`cdtools.widgets.ResultsGrid` keeps them to redraw."""
        count = len(self._learner().dls.valid)
        if count == 0:
            raise ParameterError(
                "there are no validation chips to show; prepare the data with "
                "val_split_pct > 0 (or a val/ folder)."
            )
        if not 0 <= batch < count:
            raise ParameterError(
                f"batch {batch} is not one of the {count} validation batches; pass 0 to "
                f"{count - 1}."
            )
        results = self._validation(start=batch)
        try:
            return next(results)
        finally:
            results.close()  # leaves inference mode

    def draw_results(
        self, results: tuple[torch.Tensor, ...], *, rows: int = 4, threshold: float | None = None
    ) -> Figure:
        """The figure of :meth:`show_results` for a :meth:`validation_batch`."""
        from cdtools.plots import show_pairs

        before, after, mask, prob = results
        rows = min(rows, len(mask))
        stats = self.spec.stats
        return show_pairs(
            [stats.denormalise(t.cpu().numpy()) for t in before[:rows]],
            [stats.denormalise(t.cpu().numpy()) for t in after[:rows]],
            [m.cpu().numpy() for m in mask[:rows]],
            probs=[p.cpu().numpy() for p in prob[:rows]],
            threshold=self.threshold if threshold is None else threshold,
        )

    # ------------------------------------------------------------------ package
    def _score(self) -> Any:
        return self.precision_recall_score()

    @classmethod
    def _build(cls, spec: ModelSpec, path: PathLike) -> torch.nn.Module:
        if spec.arch not in ARCHITECTURES:
            raise PackageError(
                f"{path} holds a {spec.arch!r} model; this cdtools knows {sorted(ARCHITECTURES)}."
            )
        return ARCHITECTURES[spec.arch](
            spec.in_channels, backbone=spec.backbone, pretrained=False, **spec.arch_kwargs
        )

    def export_onnx(self, path: PathLike, *, tile: int | None = None) -> Path:
        """Write an ONNX model: inputs before and after (normalised), output probability."""
        if self.spec.downsample > 1:
            raise ParameterError(
                f"this model was trained with downsample={self.spec.downsample}, which an "
                "ONNX file does not hold yet; predict and predict_scene apply it (with "
                "runtime='onnxruntime' or 'openvino' too)."
            )
        from cdtools.learn.onnx_export import write_onnx

        return write_onnx(self.model, self.probability, Path(path), self.spec, tile=tile)

    # ------------------------------------------------------------------ predict
    def predict(
        self,
        before_image: PathLike | np.ndarray,
        after_image: PathLike | np.ndarray,
        *,
        out_path: PathLike | None = None,
        visualize: bool = False,
        threshold: float | None = None,
        tile: int | None = None,
        overlap: int | None = None,
        batch_size: int | None = None,
        output: Literal["probability", "mask"] = "probability",
        overwrite: bool = False,
        tta: bool = False,
        precision: Precision = "auto",
    ) -> xr.DataArray:
        """Change probability of a pair of any size, in memory, on the pair's grid.

        A thin call of cdtools' one inference engine: :func:`cdtools.load_pair` (or
        :func:`cdtools.io.pair.array_pair` for arrays), then :func:`cdtools.predict_scene`,
        with its tiling, blending, precision and normalisation, and its result computed.
        An image smaller than a tile is padded with no data first.

        Args:
            before_image: the earlier date: a raster file (GeoTIFF, or a plain PNG or JPEG
                paired pixel for pixel) or an image array (``(bands, h, w)``, ``(h, w)`` or
                ``(h, w, bands)``; NaN marks no data). Extra bands are dropped to the
                model's (``spec.bands``).
            after_image: the later date, the same kind as ``before_image``.
            out_path: also write the result there as a Cloud Optimized GeoTIFF
                (:func:`cdtools.write_raster`): uint8 probability x 255 (0-254) with 255 as
                nodata, exactly what ``cdtools predict`` writes; 0/1 with 255 as nodata with
                ``output="mask"``.
            visualize: show before | after | change probability (in Jupyter).
            threshold: probability above which a pixel is change, for ``output="mask"`` and
                ``visualize`` (default the detector's ``threshold``).
            tile: tile size in pixels, a multiple of 32 (default predict_scene's choice).
            overlap: pixels shared by neighbouring tiles (default predict_scene's).
            batch_size: tiles per forward pass (default predict_scene's).
            output: what ``out_path`` holds: "probability" or a 0/1 "mask".
            overwrite: replace an existing ``out_path``; without it an existing file is an
                :class:`~cdtools.errors.OutputExistsError` before anything is computed.
            tta: test-time augmentation: each tile's probability is the mean over its 8
                flips and quarter turns, 8 times the compute; the model's ``output`` must be
                "logit" or "distance".
            precision: "auto", "fp32", "bf16" or "fp16", as :func:`cdtools.predict_scene`.

        Returns:
            A float32 ``(y, x)`` DataArray: change probability in [0, 1], NaN where either
            date has no data, with the pair's CRS and transform (pixel coordinates and no
            CRS for plain images and arrays). It is predict_scene's ``encoding="float32"``
            result: the blend itself, not quantised to 1/255, since it stays in memory;
            :func:`cdtools.scene.changemap.encode_probability` of it is exactly
            predict_scene's uint8 result, and what ``out_path`` receives.

        Example:
            >>> change = detector.predict("before.tif", "after.tif", tta=True)  # doctest: +SKIP
            >>> change = detector.predict(before, after, out_path="change.tif")  # doctest: +SKIP
        """
        from cdtools.scene.changemap import write_change_map  # scene inference, a layer up
        from cdtools.scene.predict import predict_scene

        if output not in ("probability", "mask"):
            raise ParameterError(f"output must be probability or mask, got {output!r}.")
        if out_path is not None and Path(out_path).exists() and not overwrite:
            raise OutputExistsError(f"{out_path} exists; pass overwrite=True to replace it.")
        pair = load_pair(before_image, after_image)
        padded = padded_pair(pair, -(-(tile or self.spec.extent) // 32) * 32)
        prob = predict_scene(
            self, padded, tile=tile, overlap=overlap, batch_size=batch_size,
            precision=precision, tta=tta, encoding="float32",
        ).compute()  # fmt: skip
        prob = prob.isel(y=slice(0, pair.sizes["y"]), x=slice(0, pair.sizes["x"]))
        threshold = self.threshold if threshold is None else threshold
        if out_path is not None:
            write_change_map(
                prob, out_path, output=output, threshold=threshold, overwrite=overwrite
            )
        if visualize:
            from cdtools.plots import display, show_prediction

            before, after = np.nan_to_num(pair.values)
            display(show_prediction(before, after, prob.values, threshold=threshold))
        return prob


def _split_encoder(model: torch.nn.Module) -> list[list[torch.nn.Parameter]]:
    encoder = model.encoder_parameters()
    ids = {id(p) for p in encoder}
    return [encoder, [p for p in model.parameters() if id(p) not in ids]]
