"""The demo: the whole pipeline on the sample world, as ``make demo`` runs it."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("cdtools")


def run_demo(out: Path, *, size: int, seed: int, epochs: int, chip_size: int) -> Path:
    """Sample world -> chips -> DataLoaders -> trained model -> change map, all in ``out``.

    Returns the change map's path; each step is logged and its figure saved in ``out``.

    Example:
        >>> run_demo(Path("outputs"), size=1024, seed=0, epochs=4, chip_size=128)  # doctest: +SKIP
    """
    from cdtools.chips.data import prepare_data
    from cdtools.chips.export import export_training_data
    from cdtools.io.cog import write_raster
    from cdtools.io.pair import load_pair
    from cdtools.learn.detector import ChangeDetector
    from cdtools.plots import show_chip_index, show_scene
    from cdtools.scene.predict import predict_scene
    from cdtools.synthetic import make_scene_pair

    out.mkdir(parents=True, exist_ok=True)
    world = make_scene_pair(out / "sample", size=size, seed=seed, overwrite=True)
    log.info("1/5 sample world in %s", world.folder)
    figure = show_scene(world.before, world.after, polygons=world.change_polygons)
    figure.savefig(out / "scene.png", dpi=110)
    chips = export_training_data(
        world.before, world.after, world.change_polygons, out / "chips",
        chip_size=chip_size, stride=chip_size // 2, overwrite=True,
    )  # fmt: skip
    show_chip_index(chips / "chips.geojson", scene=world.before).savefig(out / "chip_index.png")
    log.info("2/5 chips in %s", chips)
    dls = prepare_data(chips, chip_size=chip_size, batch_size=8, seed=seed)
    dls.show_batch(rows=4).savefig(out / "show_batch.png", dpi=110)
    n_train, n_valid = len(dls.train_ds), len(dls.valid_ds)
    log.info("3/5 DataLoaders: %d training, %d validation chips", n_train, n_valid)
    import torch

    torch.manual_seed(seed)  # the model's initial weights
    detector = ChangeDetector(dls, arch="siamese_unet", backbone="resnet18", pretrained="auto")
    detector.fit(epochs, lr=3e-3)
    detector.tune_threshold()
    scores = detector.precision_recall_score()
    detector.show_results(rows=4).savefig(out / "show_results.png", dpi=110)
    model = detector.save(out / "model", zip=True, overwrite=True)
    log.info(
        "4/5 model in %s: validation F1 of change %.3f (precision %.3f, recall %.3f), "
        "threshold %.2f",
        model, scores.loc["f1", "Change"], scores.loc["precision", "Change"],
        scores.loc["recall", "Change"], detector.threshold,
    )  # fmt: skip
    test = make_scene_pair(out / "test_scene", size=size, seed=seed + 1, overwrite=True)
    change = write_raster(
        predict_scene(detector, load_pair(test.before, test.after)),
        out / "change.tif", overwrite=True, progress=False,
    )  # fmt: skip
    log.info(
        "5/5 change map of another scene (seed %d), scene inference with dask: %s "
        "(change probability x 255, 255: no data)",
        seed + 1, change,
    )  # fmt: skip
    return change
