"""A change detector trained on the sample world with a fixed recipe, cached after first use.

Notebooks that need a trained model (evaluation, scene inference, regions) call
:func:`sample_detector`: the first call trains it (a few minutes on a 2-core CPU) and
saves a model package under the data root; later calls load the package.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from cdtools.raster import PathLike

log = logging.getLogger(__name__)

#: How the sample model is made. Changing it changes the cache key, so a new model is trained.
RECIPE: dict[str, Any] = {
    "world_size": 768,
    "world_seed": 0,
    "tile_size": 128,
    "stride": 64,
    "batch_size": 8,
    "arch": "siamese_unet",
    "backbone": "resnet18",
    "epochs": 6,
    "lr": 3e-3,
    "seed": 0,
}


def sample_detector(*, root: PathLike | None = None, retrain: bool = False) -> Any:
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

    from cdtools.data import prepare_data
    from cdtools.detector import ChangeDetector
    from cdtools.export import export_training_data
    from cdtools.manifest import data_root
    from cdtools.synthetic.scene import make_scene_pair

    key = hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()[:10]
    folder = Path(root) if root is not None else data_root() / "sample-model" / key
    world = make_scene_pair(folder / "world", size=RECIPE["world_size"], seed=RECIPE["world_seed"])
    chips = folder / "chips"
    if not (chips / "export.json").exists():
        export_training_data(
            world.before, world.after, world.change_polygons, chips,
            tile_size=RECIPE["tile_size"], stride=RECIPE["stride"], progress=False,
        )  # fmt: skip
    data = prepare_data(
        chips, chip_size=RECIPE["tile_size"], batch_size=RECIPE["batch_size"], seed=RECIPE["seed"]
    )
    package = folder / "model"
    if (package / "model.json").exists() and not retrain:
        return ChangeDetector.from_model(package, data=data)
    log.info("training the sample model once (it is cached in %s)", package)
    torch.manual_seed(RECIPE["seed"])
    detector = ChangeDetector(
        data, arch=RECIPE["arch"], backbone=RECIPE["backbone"], pretrained=False
    )
    detector.fit(RECIPE["epochs"], RECIPE["lr"], checkpoint=False)
    detector.tune_threshold()
    detector.save(package, overwrite=True)
    return detector
