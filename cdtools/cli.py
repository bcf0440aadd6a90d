"""The ``cdtools`` command: sample world, export, train, predict and the demo.

Every sub-command is a thin wrapper over one public function; errors a user can cause
are printed as one line (no traceback) with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from cdtools.errors import CdtoolsError

log = logging.getLogger("cdtools")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)  # cdtools' own progress lines, not every library's
    try:
        args.run(args)
    except CdtoolsError as err:
        print(f"cdtools: error: {err}", file=sys.stderr)
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cdtools", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    sample = commands.add_parser("sample", help="write the synthetic sample world")
    sample.add_argument("out", type=Path, help="folder to write before.tif, after.tif, ...")
    sample.add_argument("--size", type=int, default=1024)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--nir", action="store_true", help="add a near-infrared band")
    sample.set_defaults(run=_sample)

    export = commands.add_parser("export", help="cut a pair and its labels into chips")
    export.add_argument("before", type=Path)
    export.add_argument("after", type=Path)
    export.add_argument("labels", type=Path, help="change polygons or a label raster")
    export.add_argument("out", type=Path, help="chips folder to create")
    export.add_argument("--tile-size", type=int, default=256)
    export.add_argument("--stride", type=int, default=64)
    export.add_argument("--min-change-fraction", type=float, default=0.0)
    export.add_argument("--format", choices=("tif", "png"), default="tif")
    export.add_argument("--layout", choices=("arcgis", "levir"), default="arcgis")
    export.add_argument("--overwrite", action="store_true")
    export.set_defaults(run=_export)

    train = commands.add_parser("train", help="train a change detector on a chips folder")
    train.add_argument("chips", type=Path, help="folder from `cdtools export` (or LEVIR-CD)")
    train.add_argument("--arch", choices=("siamese_unet", "stanet", "bit"), default="siamese_unet")
    train.add_argument("--backbone", default="resnet18")
    train.add_argument("--pretrained", choices=("auto", "true", "false"), default="auto")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--lr", type=float, default=None, help="default: lr_find's suggestion")
    train.add_argument("--chip-size", type=int, default=256)
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--out", type=Path, required=True, help="model package folder to write")
    train.add_argument("--overwrite", action="store_true")
    train.set_defaults(run=_train)

    predict = commands.add_parser("predict", help="change map of a pair with a trained model")
    predict.add_argument("before", type=Path)
    predict.add_argument("after", type=Path)
    predict.add_argument("--model", type=Path, required=True, help="model package folder or .zip")
    predict.add_argument("--out", type=Path, required=True, help="GeoTIFF to write")
    predict.add_argument("--tile", type=int, default=None)
    predict.add_argument("--overlap", type=int, default=None)
    predict.add_argument("--mask", action="store_true", help="write 0/1 instead of probability")
    predict.add_argument("--overwrite", action="store_true")
    predict.set_defaults(run=_predict)

    demo = commands.add_parser("demo", help="the whole pipeline on the sample world")
    demo.add_argument("--out", type=Path, default=Path("outputs"))
    demo.add_argument("--size", type=int, default=1024)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--chip-size", type=int, default=128)
    demo.add_argument("--epochs", type=int, default=4)
    demo.set_defaults(run=_demo)
    return parser


def _sample(args: argparse.Namespace) -> None:
    from cdtools.synthetic import make_scene_pair

    world = make_scene_pair(args.out, size=args.size, seed=args.seed, nir=args.nir)
    log.info(
        "sample world written to %s (before.tif, after.tif, change_polygons.geojson, ...)",
        world.before.parent,
    )


def _export(args: argparse.Namespace) -> None:
    from cdtools.export import export_training_data

    out = export_training_data(
        args.before,
        args.after,
        args.labels,
        args.out,
        tile_size=args.tile_size,
        stride=args.stride,
        min_change_fraction=args.min_change_fraction,
        image_format=args.format,
        layout=args.layout,
        overwrite=args.overwrite,
    )
    log.info("chips written to %s", out)


def _train(args: argparse.Namespace) -> None:
    from cdtools.data import prepare_data
    from cdtools.detector import ChangeDetector

    pretrained = {"auto": "auto", "true": True, "false": False}[args.pretrained]
    dls = prepare_data(args.chips, chip_size=args.chip_size, batch_size=args.batch_size)
    detector = ChangeDetector(dls, arch=args.arch, backbone=args.backbone, pretrained=pretrained)
    detector.fit(args.epochs, args.lr)
    detector.tune_threshold()
    scores = detector.precision_recall_score()
    out = detector.save(args.out, overwrite=args.overwrite)
    log.info(
        "model saved to %s (validation F1 of change %.3f at threshold %.2f)",
        out,
        scores.loc["f1", "Change"],
        detector.threshold,
    )


def _predict(args: argparse.Namespace) -> None:
    from cdtools.detector import ChangeDetector

    detector = ChangeDetector.from_model(args.model)
    detector.predict(
        args.before,
        args.after,
        out_path=args.out,
        tile=args.tile,
        overlap=args.overlap,
        output="mask" if args.mask else "probability",
        overwrite=args.overwrite,
    )
    log.info("change map written to %s", args.out)


def _demo(args: argparse.Namespace) -> None:
    """Sample world -> chips -> DataLoaders -> trained model -> change map, all in ``args.out``."""
    from cdtools.data import prepare_data
    from cdtools.detector import ChangeDetector
    from cdtools.export import export_training_data
    from cdtools.plots import show_chip_index, show_scene
    from cdtools.synthetic import make_scene_pair

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    world = make_scene_pair(out / "sample", size=args.size, seed=args.seed, if_exists="overwrite")
    log.info("1/5 sample world in %s", world.folder)
    figure = show_scene(world.before, world.after, polygons=world.change_polygons)
    figure.savefig(out / "scene.png", dpi=110)
    chips = export_training_data(
        world.before, world.after, world.change_polygons, out / "chips",
        tile_size=args.chip_size, stride=args.chip_size // 2, overwrite=True,
    )  # fmt: skip
    show_chip_index(chips / "chips.geojson", scene=world.before).savefig(out / "chip_index.png")
    log.info("2/5 chips in %s", chips)
    dls = prepare_data(chips, chip_size=args.chip_size, batch_size=8, seed=args.seed)
    dls.show_batch(rows=4).savefig(out / "show_batch.png", dpi=110)
    n_train, n_valid = len(dls.train_ds), len(dls.valid_ds)
    log.info("3/5 DataLoaders: %d training, %d validation chips", n_train, n_valid)
    import torch

    torch.manual_seed(args.seed)  # the model's initial weights
    detector = ChangeDetector(dls, arch="siamese_unet", backbone="resnet18", pretrained="auto")
    detector.fit(args.epochs, 3e-3)
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
    test = make_scene_pair(
        out / "test_scene", size=args.size, seed=args.seed + 1, if_exists="overwrite"
    )
    change = out / "change.tif"
    detector.predict(test.before, test.after, out_path=change, overwrite=True)
    log.info("5/5 change map of another scene (seed %d): %s", args.seed + 1, change)


if __name__ == "__main__":
    raise SystemExit(main())
