"""The ``cdtools`` command: sample world, export, train, predict, regions and the demo.

Every sub-command is a thin wrapper over one public function; errors a user can cause
are printed as one line (no traceback) with exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cdtools.errors import CdtoolsError, RasterError

log = logging.getLogger("cdtools")

DATE_HELP = (
    "the earlier date: a raster file, a folder of tiles, a comma-separated list of files, or "
    'a quoted glob pattern ("pre/*.tif")'
)


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
    export.add_argument("--chip-size", type=int, default=256, help="chip width and height")
    export.add_argument("--stride", type=int, default=64)
    export.add_argument("--min-change-fraction", type=float, default=0.0)
    export.add_argument("--format", choices=("tif", "png"), default="tif")
    export.add_argument("--layout", choices=("arcgis", "levir"), default="arcgis")
    export.add_argument("--overwrite", action="store_true")
    export.add_argument("--no-progress", action="store_true", help="no progress bar")
    export.set_defaults(run=_export)

    train = commands.add_parser("train", help="train a change detector on a chips folder")
    train.add_argument("chips", type=Path, help="folder from `cdtools export` (or LEVIR-CD)")
    train.add_argument(
        "--arch",
        default="fc_siam_conc",  # ChangeDetector's default; it checks the name
        help="fc_siam_conc, fc_siam_diff, fc_ef, tinycd, siamese_unet, stanet or bit",
    )
    train.add_argument("--backbone", default=None, help="default: the architecture's own")
    train.add_argument("--pretrained", choices=("auto", "true", "false"), default="auto")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--lr", type=float, default=None, help="default: the recipe's 3e-3")
    train.add_argument("--chip-size", type=int, default=256)
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument(
        "--norm",
        choices=("scene", "dataset", "imagenet"),
        default="scene",  # prepare_data's default
        help="scene: each date of each scene with its own statistics; dataset: the training "
        "chips' statistics for all",
    )
    train.add_argument("--out", type=Path, required=True, help="model package folder to write")
    train.add_argument("--overwrite", action="store_true")
    train.set_defaults(run=_train)

    predict = commands.add_parser(
        "predict",
        help="change map of a whole scene with a trained model (lazy, chunked, with dask)",
        description="Align BEFORE and AFTER on one grid, predict the change probability chunk "
        "by chunk and stream it to a Cloud Optimized GeoTIFF: uint8 0-254 (probability x 255), "
        "255 where either date has no data.",
    )
    predict.add_argument("before", help=DATE_HELP)
    predict.add_argument("after", help="the later date, given the same ways as BEFORE")
    predict.add_argument("--model", type=Path, required=True, help="model package folder or .zip")
    predict.add_argument("--out", type=Path, required=True, help="GeoTIFF (COG) to write")
    predict.add_argument(
        "--grid",
        choices=("intersection", "union", "before", "after"),
        default="intersection",
        help="grid both dates are read onto (default: intersection, in the before CRS)",
    )
    predict.add_argument("--bands", type=band_list, metavar="I,J,...", help=BANDS_HELP)
    predict.add_argument("--chunk", type=int, metavar="N", help="dask chunk in pixels")
    predict.add_argument("--tile", type=int, metavar="N", help="model tile (multiple of 32)")
    predict.add_argument("--overlap", type=int, metavar="N", help="pixels shared by tiles")
    predict.add_argument("--batch-size", type=int, metavar="N", help="tiles per forward pass")
    predict.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="auto: fp16 on a GPU, bf16 on a CPU that has it, fp32 otherwise",
    )
    predict.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation: average each tile over its 8 flips and quarter turns "
        "(8 times the compute)",
    )
    predict.add_argument(
        "--runtime",
        choices=("torch", "onnxruntime", "openvino"),
        default="torch",
        help="what runs the model: torch, or its ONNX export in ONNX Runtime or OpenVINO "
        "(on the CPU; pip install 'cdtools[openvino]')",
    )
    cluster = predict.add_mutually_exclusive_group()
    cluster.add_argument(
        "--workers", type=int, metavar="N", help="run on a local dask cluster of N processes"
    )
    cluster.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on the dask scheduler at ADDRESS"
    )
    predict.add_argument(
        "--mask", action="store_true", help="write 0/1 at the model's threshold (255: no data)"
    )
    predict.add_argument("--overwrite", action="store_true")
    predict.add_argument("--no-progress", action="store_true", help="no progress bar")
    predict.set_defaults(run=_predict)

    regions = commands.add_parser(
        "regions",
        help="connected change regions of a change map as polygons (GeoPackage or GeoJSON)",
        description="Threshold a change map, clean it (closing then opening), and write one "
        "polygon per connected region with its area in m2, centroid (map and lon/lat) and "
        "mean and max probability; with --classifier, also the land cover before and after.",
    )
    regions.add_argument("change", type=Path, help="change map GeoTIFF from `cdtools predict`")
    regions.add_argument(
        "--out", type=Path, required=True, help="polygons to write: .gpkg or .geojson"
    )
    regions.add_argument(
        "--threshold",
        type=float,
        help="change above this probability (default: the map's threshold tag, else 0.5)",
    )
    regions.add_argument(
        "--min-area", type=float, default=20.0, metavar="M2", help="smallest region (m2)"
    )
    regions.add_argument("--closing", type=int, default=1, metavar="PX", help="disk radius")
    regions.add_argument("--opening", type=int, default=1, metavar="PX", help="disk radius")
    regions.add_argument(
        "--classifier", type=Path, metavar="MODEL", help="land-cover model package"
    )
    regions.add_argument("--before", help="with --classifier: " + DATE_HELP)
    regions.add_argument("--after", help="with --classifier: the later date, the same ways")
    regions.add_argument(
        "--bands", type=band_list, metavar="I,J,...", help="with --classifier: " + BANDS_HELP
    )
    regions.add_argument(
        "--patch-size",
        type=int,
        metavar="N",
        help="pixels of the patches classified (default: the classifier's input size)",
    )
    regions.add_argument("--overwrite", action="store_true")
    regions.set_defaults(run=_regions)

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
    from cdtools.chips.export import export_training_data

    out = export_training_data(
        args.before,
        args.after,
        args.labels,
        args.out,
        chip_size=args.chip_size,
        stride=args.stride,
        min_change_fraction=args.min_change_fraction,
        image_format=args.format,
        layout=args.layout,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    log.info("chips written to %s", out)


def _train(args: argparse.Namespace) -> None:
    from cdtools.chips.data import prepare_data
    from cdtools.learn.detector import ChangeDetector

    pretrained = {"auto": "auto", "true": True, "false": False}[args.pretrained]
    dls = prepare_data(
        args.chips, chip_size=args.chip_size, batch_size=args.batch_size, norm=args.norm
    )
    detector = ChangeDetector(dls, arch=args.arch, backbone=args.backbone, pretrained=pretrained)
    detector.fit(args.epochs, lr=args.lr)
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
    from cdtools.errors import OutputExistsError, ParameterError
    from cdtools.io.cog import write_raster
    from cdtools.io.pair import load_pair
    from cdtools.scene.changemap import threshold_change
    from cdtools.scene.model import SceneModel
    from cdtools.scene.predict import DEFAULT_CHUNK, predict_scene

    out = args.out.resolve()
    if out.exists() and not args.overwrite:
        raise OutputExistsError(f"{args.out} exists; pass --overwrite to replace it.")
    if args.workers is not None and args.workers < 1:
        raise ParameterError(f"--workers must be at least 1, got {args.workers}.")
    before, after = resolve_date(args.before), resolve_date(args.after)
    model = SceneModel.of(args.model)  # read once: its threshold, and what workers receive
    chunk = args.chunk or DEFAULT_CHUNK
    pair = load_pair(
        before, after, bands=args.bands, grid=args.grid,
        chunks={"band": -1, "y": chunk, "x": chunk},
    )  # fmt: skip
    with _dask_client(args.workers, args.scheduler):  # first, so the model is sent once
        change = predict_scene(
            model, pair, tile=args.tile, overlap=args.overlap, batch_size=args.batch_size,
            precision=args.precision, chunk=args.chunk, tta=args.tta, runtime=args.runtime,
        )  # fmt: skip
        if args.mask:
            change = threshold_change(change, model.spec.threshold)
        else:  # a tag of the file, the default threshold of `cdtools regions`
            change = change.assign_attrs(threshold=model.spec.threshold)
        write_raster(change, out, overwrite=args.overwrite, progress=not args.no_progress)
    what = "change mask (0/1" if args.mask else "change probability (x 255"
    log.info(
        "%s, 255: no data) written to %s: %d x %d pixels in %s",
        what, args.out, change.sizes["y"], change.sizes["x"], change.rio.crs,
    )  # fmt: skip


def _regions(args: argparse.Namespace) -> None:
    from cdtools.errors import OutputExistsError, ParameterError
    from cdtools.io.raster import atomic_path
    from cdtools.regions.table import regions_to_polygons

    driver = POLYGON_DRIVERS.get(args.out.suffix.lower())
    if driver is None:
        raise ParameterError(f"--out must end in .gpkg or .geojson, got {args.out.name}.")
    if args.out.exists() and not args.overwrite:
        raise OutputExistsError(f"{args.out} exists; pass --overwrite to replace it.")
    if args.classifier is not None and (args.before is None or args.after is None):
        raise ParameterError("--classifier needs --before and --after (the dates of the map).")
    if args.classifier is None and (args.before is not None or args.after is not None):
        raise ParameterError("--before and --after are read only with --classifier MODEL.")
    polygons = regions_to_polygons(
        args.change, threshold=args.threshold, min_area_m2=args.min_area,
        closing=args.closing, opening=args.opening,
    )  # fmt: skip
    if args.classifier is not None:
        polygons = _classify_regions(polygons, args)
    # a GeoPackage's layer is named after the file, not after the temporary name
    layer = {"layer": re.sub(r"\W", "_", args.out.stem)} if driver == "GPKG" else {}
    with atomic_path(args.out) as tmp:
        named = tmp.with_name(tmp.name + args.out.suffix)  # GDAL warns about other suffixes
        try:
            polygons.to_file(named, driver=driver, **layer)
            os.replace(named, tmp)
        finally:
            named.unlink(missing_ok=True)
    units = "m2" if polygons.attrs["units"] == "m2" else "pixels"
    total = polygons["area_m2" if units == "m2" else "area_px"].sum()
    log.info(
        "%d change regions (%.0f %s in all, threshold %.2f) written to %s",
        len(polygons), total, units, polygons.attrs["threshold"], args.out,
    )  # fmt: skip


POLYGON_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON"}
LANDCOVER_COLUMNS = ("class_before", "confidence_before", "class_after", "confidence_after")


def _classify_regions(polygons: Any, args: argparse.Namespace) -> Any:
    """The polygons with the land cover before and after each region, from --classifier."""
    import cdtools  # the land-cover verbs by their public names, wherever they live
    from cdtools.io.raster import describe
    from cdtools.regions.spotcheck import grab_patches
    from cdtools.scene.changemap import pair_on_grid

    classifier = cdtools.LandCoverClassifier.from_model(args.classifier)
    if polygons.empty:
        return polygons.assign(**{c: [] for c in LANDCOVER_COLUMNS})
    size = args.patch_size or getattr(getattr(classifier, "spec", None), "input_size", 256)
    pair = pair_on_grid(
        resolve_date(args.before), resolve_date(args.after), describe(args.change),
        bands=args.bands,
    )  # fmt: skip
    patches = grab_patches(pair, polygons, size=size)
    classes = cdtools.classify_patches(patches, classifier)
    merged = polygons.merge(classes[["id", *LANDCOVER_COLUMNS]], on="id", how="left")
    merged.attrs = dict(polygons.attrs)
    return merged


BANDS_HELP = "0-based bands of both dates to use, e.g. 3,2,1 (default: all, or the model's)"


def band_list(text: str) -> list[int]:
    """``--bands 3,2,1`` as ``[3, 2, 1]``."""
    try:
        bands = [int(b) for b in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bands must be 0-based integers separated by commas (3,2,1), got {text!r}"
        ) from None
    if any(b < 0 for b in bands):
        raise argparse.ArgumentTypeError(f"bands are 0-based and cannot be negative: {text!r}")
    return bands


def resolve_date(date: str) -> Path | list[Path]:
    """What :func:`cdtools.load_pair` takes for one date given on the command line.

    ``date`` is a raster file, a folder of tiles, a comma-separated list of files, or a
    glob pattern (``"pre/*.tif"``, quoted so that the shell leaves it alone); a list item
    may be a pattern too. Paths come back absolute (dask workers may run elsewhere).
    Raises :class:`~cdtools.errors.RasterError` when nothing matches.

    Example:
        >>> resolve_date("pre/tile_*.tif")  # doctest: +SKIP
        [PosixPath('/data/pre/tile_1361-10160.tif'), PosixPath('/data/pre/tile_1361-9136.tif')]
    """
    items = [item.strip() for item in date.split(",") if item.strip()]
    if not items:
        raise RasterError(f"no raster given ({date!r}); pass a file, a folder or a pattern.")
    if len(items) == 1 and not glob.has_magic(items[0]):
        path = Path(items[0]).expanduser()
        if not path.exists():
            raise RasterError(f"{path} does not exist; check the path (relative to {Path.cwd()}).")
        return path.absolute()  # a file or a folder of tiles: load_pair reads either
    files: list[Path] = []
    for item in items:
        if not glob.has_magic(item):
            path = Path(item).expanduser()
            if not path.exists():
                raise RasterError(
                    f"{path} does not exist; check the list (relative to {Path.cwd()})."
                )
            if not path.is_file():
                raise RasterError(f"{path} is a folder; a comma-separated list takes files.")
            files.append(path.absolute())
            continue
        found = sorted(Path(m) for m in glob.glob(os.path.expanduser(item), recursive=True))
        found = [m.absolute() for m in found if m.is_file()]
        if not found:
            raise RasterError(
                f"no file matches {item!r} (relative to {Path.cwd()}); check the pattern, and "
                "quote it so that the shell does not expand it."
            )
        files += found
    return list(dict.fromkeys(files))  # in order, each file once


@contextlib.contextmanager
def _dask_client(workers: int | None, scheduler: str | None) -> Iterator[None]:
    """A dask.distributed Client for the run, or nothing (dask's threaded scheduler)."""
    if workers is None and scheduler is None:
        yield
        return
    from distributed import Client, LocalCluster

    # dask.distributed logs every connection at INFO; the command line shows cdtools' lines.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as err:
            raise CdtoolsError(
                f"cannot reach the dask scheduler at {scheduler} ({err}); check the address "
                "(tcp://host:8786) and that the scheduler is running, or use --workers N."
            ) from None
        with client:
            log.info("running on the dask scheduler at %s", scheduler)
            yield
        return
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True,
            dashboard_address=":0", silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster),
    ):  # fmt: skip
        log.info("running on a local dask cluster of %d worker processes", workers)
        yield


def _demo(args: argparse.Namespace) -> None:
    from cdtools.demo import run_demo

    run_demo(args.out, size=args.size, seed=args.seed, epochs=args.epochs, chip_size=args.chip_size)


if __name__ == "__main__":
    raise SystemExit(main())
