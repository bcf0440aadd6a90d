"""The sample models: a change detector and a land-cover classifier trained on the sample
world with fixed recipes, cached after first use.

Notebooks that need a trained model (evaluation, scene inference, regions, land cover)
call :func:`sample_detector` or :func:`sample_landcover_classifier`: the first call trains
it (a few minutes on a 2-core CPU) and saves a model package under the data root; later
calls load the package.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cdtools.io.raster import PathLike

if TYPE_CHECKING:
    from cdtools.landcover.classifier import LandCoverClassifier
    from cdtools.learn.detector import ChangeDetector

log = logging.getLogger(__name__)
Model = TypeVar("Model")


def _one_process_at_a_time(kind: str) -> Callable[[Callable[..., Model]], Callable[..., Model]]:
    """Let one process at a time make or load a sample model of ``kind``: notebooks and
    test workers run side by side, and the second should load what the first trained,
    not train it again over the first one's files. The lock file sits beside the cache."""

    def wrap(make: Callable[..., Model]) -> Callable[..., Model]:
        @functools.wraps(make)
        def locked(*, root: PathLike | None = None, retrain: bool = False) -> Model:
            from filelock import FileLock

            from cdtools.io.manifest import data_root

            cache = Path(root) if root is not None else data_root() / kind
            cache.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(f"{cache}.lock"):
                return make(root=root, retrain=retrain)

        return locked

    return wrap


#: How the sample model is made. Changing it changes the cache key, so a new model is trained.
RECIPE: dict[str, Any] = {
    "world_size": 768,
    "world_seed": 0,
    "chip_size": 128,
    "stride": 64,
    "batch_size": 8,
    "arch": "siamese_unet",
    "backbone": "resnet18",
    "epochs": 6,
    "lr": 3e-3,
    "precision": "fp32",
    "norm": "dataset",
    "seed": 0,
    "threshold": "supported",  # tune_threshold's rule (the F1-best bin before 2026-12)
}


@_one_process_at_a_time("sample-model")
def sample_detector(*, root: PathLike | None = None, retrain: bool = False) -> ChangeDetector:
    """The sample world's change detector, with its training and validation data attached.

    Args:
        root: cache folder; default ``<data root>/sample-model/<recipe hash>``.
        retrain: train again even when a cached model exists.

    Returns:
        A :class:`cdtools.ChangeDetector` whose ``data`` are the recipe's DataLoaders.

    Example:
        >>> detector = sample_detector()  # doctest: +SKIP
        >>> detector.precision_recall_score()  # doctest: +SKIP
    """
    import torch

    from cdtools.chips.data import prepare_data
    from cdtools.chips.export import export_training_data
    from cdtools.io.manifest import data_root
    from cdtools.learn.detector import ChangeDetector
    from cdtools.synthetic.scene import make_scene_pair

    key = hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()[:10]
    folder = Path(root) if root is not None else data_root() / "sample-model" / key
    world = make_scene_pair(folder / "world", size=RECIPE["world_size"], seed=RECIPE["world_seed"])
    chips = folder / "chips"
    if not (chips / "export.json").exists():
        export_training_data(
            world.before, world.after, world.change_polygons, chips,
            chip_size=RECIPE["chip_size"], stride=RECIPE["stride"], progress=False,
        )  # fmt: skip
    data = prepare_data(
        chips, chip_size=RECIPE["chip_size"], batch_size=RECIPE["batch_size"],
        seed=RECIPE["seed"], norm=RECIPE["norm"],
    )  # fmt: skip
    package = folder / "model"
    if (package / "model.json").exists() and not retrain:
        return ChangeDetector.from_model(package, data=data)
    log.info("training the sample model once (it is cached in %s)", package)
    torch.manual_seed(RECIPE["seed"])
    detector = ChangeDetector(
        data, arch=RECIPE["arch"], backbone=RECIPE["backbone"], pretrained=False
    )
    detector.fit(RECIPE["epochs"], lr=RECIPE["lr"], checkpoint=False, precision=RECIPE["precision"])
    detector.tune_threshold()
    detector.save(package, overwrite=True)
    return detector


#: How the sample land-cover classifier is made; changing it trains a new one. Patches
#: come from themed one-class worlds and from the scenes of ``scene_seeds`` (both dates,
#: labelled with the land cover at their centre, many inside changes); the notebooks and
#: benchmarks evaluate on other seeds (7, 8, 9).
LANDCOVER_RECIPE: dict[str, Any] = {
    "patch_size": 64,
    "themed_per_class": 40,
    "themed_seed": 0,
    "scene_seeds": [0, 1, 2, 3, 4, 5],
    "scene_size": 1024,
    "per_scene": 20,
    "per_change": 7,
    "centre": 16,
    "batch_size": 32,
    "backbone": "resnet18",
    "epochs": 7,
    "lr": 3e-3,
    "seed": 0,
}


@_one_process_at_a_time("sample-landcover")
def sample_landcover_classifier(
    *, root: PathLike | None = None, retrain: bool = False
) -> LandCoverClassifier:
    """The sample world's land-cover classifier, with its training and validation data attached.

    Trained once, from scratch so that it needs no network, on EuroSAT-like patches of
    64 pixels at 0.5 m: themed ones from :func:`make_landcover_patches` and ones cut from
    sample scenes by :func:`make_scene_patches` (see :data:`LANDCOVER_RECIPE`); the first
    call takes a minute or two on a 2-core CPU, later calls load the cached package.

    Args:
        root: cache folder; default ``<data root>/sample-landcover/<recipe hash>``.
        retrain: train again even when a cached classifier exists.

    Returns:
        A :class:`cdtools.LandCoverClassifier` whose ``data`` are the recipe's DataLoaders.

    Example:
        >>> classifier = sample_landcover_classifier()  # doctest: +SKIP
        >>> classifier.per_class_accuracy()  # doctest: +SKIP
    """
    import torch

    from cdtools.io.manifest import data_root
    from cdtools.landcover.classifier import LandCoverClassifier
    from cdtools.landcover.data import prepare_landcover_data
    from cdtools.synthetic.patches import make_landcover_patches
    from cdtools.synthetic.scene_patches import make_scene_patches

    recipe = LANDCOVER_RECIPE
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]
    folder = Path(root) if root is not None else data_root() / "sample-landcover" / key
    size = recipe["patch_size"]
    themed = make_landcover_patches(
        folder / "themed", n_per_class=recipe["themed_per_class"], size=size,
        seed=recipe["themed_seed"],
    )  # fmt: skip
    scenes = make_scene_patches(
        folder / "scenes", seeds=recipe["scene_seeds"], world_size=recipe["scene_size"],
        size=size, centre=recipe["centre"], per_scene=recipe["per_scene"],
        per_change=recipe["per_change"], seed=recipe["seed"],
    )  # fmt: skip
    data = prepare_landcover_data(
        [themed, scenes], size=size, batch_size=recipe["batch_size"], seed=recipe["seed"]
    )
    package = folder / "model"
    if (package / "model.json").exists() and not retrain:
        return LandCoverClassifier.from_model(package, data=data)
    log.info("training the sample land-cover classifier once (it is cached in %s)", package)
    torch.manual_seed(recipe["seed"])
    classifier = LandCoverClassifier(data, backbone=recipe["backbone"], pretrained=False)
    # fp32 and the last epoch, as this recipe has always trained (its cache key stays)
    classifier.fit(recipe["epochs"], lr=recipe["lr"], checkpoint=False, precision="fp32")
    classifier.save(package, overwrite=True)
    return classifier
