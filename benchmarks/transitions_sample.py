"""What each change became, on held-out sample scenes, against the sample world's truth.

The sample land-cover classifier (``sample_landcover_classifier``: resnet18 trained from
scratch on EuroSAT-like patches cut from one-class worlds) classifies the before and
after patches of each region of change of sample scenes that neither it nor the change
detector saw (seeds 7, 8, 9). Regions come from the true change mask ("truth regions")
and from the sample change detector's prediction ("predicted regions"). A region's true
transition is the majority land-cover class inside it on each date
(landcover_before.tif, landcover_after.tif). Reported: the share of the regions' area
whose predicted from -> to transition is the true one (all regions, and those passing
the confidence filter of ``transitions``), each date alone, the largest true transitions,
and the classifier's accuracy per class on held-out patches (another seed).

    python benchmarks/transitions_sample.py [--seeds 7,8,9] [--size 1024] [--retrain]

Writes benchmarks/results/transitions_sample.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import rioxarray
import torch
from PIL import Image

import cdtools
from cdtools.landcover.classes import EUROSAT_CLASSES
from cdtools.regions.table import label_regions, read_change_map
from cdtools.samples import LANDCOVER_RECIPE
from cdtools.synthetic.scene_patches import make_scene_patches

RESULTS = Path(__file__).parent / "results" / "transitions_sample.json"
N_CLASSES = len(EUROSAT_CLASSES)


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def majority(labels: np.ndarray, classes: np.ndarray, n_regions: int) -> np.ndarray:
    """The most common class inside each region 1..n (index 0 of the result is region 1)."""
    counts = np.bincount(
        labels.ravel().astype(np.int64) * N_CLASSES + classes.ravel(),
        minlength=(n_regions + 1) * N_CLASSES,
    ).reshape(n_regions + 1, N_CLASSES)
    return counts[1:].argmax(1)


def score(regions: pd.DataFrame, labels: np.ndarray, world, pair, classifier, tta: bool) -> dict:
    """Agreement of the classified transitions with the truth, weighted by area."""
    n = len(regions)
    names = np.array(EUROSAT_CLASSES)
    truth = pd.DataFrame(
        {
            "id": regions["id"],
            "true_before": names[majority(labels, read(world.landcover_before), n)],
            "true_after": names[majority(labels, read(world.landcover_after), n)],
        }
    )
    patches = cdtools.grab_patches(pair, regions, size=classifier.spec.input_size)
    table = regions.merge(cdtools.classify_patches(patches, classifier, tta=tta), on="id").merge(
        truth
    )
    before_ok = table["class_before"].astype(str) == table["true_before"]
    after_ok = table["class_after"].astype(str) == table["true_after"]
    area = table["area_m2"]
    confident = (table["confidence_before"] >= 0.55) & (table["confidence_after"] >= 0.55)
    both = before_ok & after_ok
    # Regions mostly on true change (all of them for truth regions; for predicted ones,
    # the rest are false alarms, whose true "transition" is no change of class).
    on_change = np.bincount(labels.ravel(), weights=read(world.change_mask).ravel() > 0)
    share = on_change[1:] / np.maximum(np.bincount(labels.ravel())[1:], 1)
    real = table["id"].map(dict(zip(regions["id"], share[: len(regions)], strict=True))) >= 0.5
    by_truth = (
        table.assign(agrees=both * area, transition=table.true_before + " -> " + table.true_after)
        .groupby("transition")[["area_m2", "agrees"]]
        .sum()
        .sort_values("area_m2", ascending=False)
    )
    return {
        "regions": n,
        "area_m2": round(float(area.sum()), 1),
        "agreement": round(float(area[both].sum() / area.sum()), 4),
        "agreement_before": round(float(area[before_ok].sum() / area.sum()), 4),
        "agreement_after": round(float(area[after_ok].sum() / area.sum()), 4),
        "confident_share_of_area": round(float(area[confident].sum() / area.sum()), 4),
        "agreement_confident": round(
            float(area[both & confident].sum() / max(area[confident].sum(), 1e-9)), 4
        ),
        "share_of_area_on_true_change": round(float(area[real].sum() / area.sum()), 4),
        "agreement_on_true_change": round(
            float(area[both & real].sum() / max(area[real].sum(), 1e-9)), 4
        ),
        "_by_truth": by_truth,
        "_sums": (
            float(area.sum()),
            float(area[both].sum()),
            float(area[confident].sum()),
            float(area[both & confident].sum()),
            float(area[real].sum()),
            float(area[both & real].sum()),
        ),
    }


def pooled(rows: list[dict]) -> dict:
    total, agree, conf, conf_agree, real, real_agree = (
        sum(r["_sums"][i] for r in rows) for i in range(6)
    )
    table = pd.concat([r["_by_truth"] for r in rows]).groupby(level=0).sum()
    table = table.sort_values("area_m2", ascending=False)
    return {
        "regions": sum(r["regions"] for r in rows),
        "area_m2": round(total, 1),
        "agreement": round(agree / total, 4),
        "confident_share_of_area": round(conf / total, 4),
        "agreement_confident": round(conf_agree / max(conf, 1e-9), 4),
        "share_of_area_on_true_change": round(real / total, 4),
        "agreement_on_true_change": round(real_agree / max(real, 1e-9), 4),
        "largest_true_transitions": [
            {
                "transition": name,
                "area_m2": round(float(row.area_m2), 1),
                "agreement": round(float(row.agrees / row.area_m2), 3),
            }
            for name, row in table.head(8).iterrows()
        ],
    }


def patch_accuracy(classifier, folder: Path) -> dict:
    """Accuracy, overall and per class, on a folder of class folders of patches."""
    truth, images = [], []
    for code, name in enumerate(classifier.classes):
        for file in sorted((folder / name).glob("*.png")):
            images.append(np.asarray(Image.open(file).convert("RGB")).transpose(2, 0, 1))
            truth.append(code)
    index, _ = classifier.predict(np.stack(images).astype(np.float32))
    truth = np.array(truth)
    per_class = {
        name: {"accuracy": round(float((index[truth == c] == c).mean()), 3),
               "patches": int((truth == c).sum())}
        for c, name in enumerate(classifier.classes) if (truth == c).any()
    }  # fmt: skip
    accuracy = round(float((index == truth).mean()), 4)
    return {"patches": len(truth), "accuracy": accuracy, "per_class": per_class}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,8,9")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--held-out", type=int, default=50, help="themed patches per class")
    parser.add_argument("--retrain", action="store_true", help="train the classifier again")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "cdtools-transitions"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]

    start = time.perf_counter()
    classifier = cdtools.sample_landcover_classifier(retrain=args.retrain)
    train_seconds = time.perf_counter() - start
    detector = cdtools.sample_detector()
    size = classifier.spec.input_size
    themed = cdtools.make_landcover_patches(
        args.workdir / "held_out_themed", n_per_class=args.held_out, size=size, seed=1
    )
    scene_patches = make_scene_patches(
        args.workdir / "held_out_scenes", seeds=seeds, world_size=args.size, size=size,
        per_scene=100, per_change=2, seed=1,
    )  # fmt: skip
    held_out = {
        "themed_patches_seed_1": patch_accuracy(classifier, themed),
        f"scene_patches_seeds_{args.seeds}": patch_accuracy(classifier, scene_patches),
    }
    for name, figures in held_out.items():
        print(f"held-out {name}: accuracy {figures['accuracy']:.3f}")
    scenes, rows = [], {(k, t): [] for k in ("truth", "predicted") for t in (True, False)}
    for seed in seeds:
        world = cdtools.make_scene_pair(args.workdir / f"scene{seed}", size=args.size, seed=seed)
        pair = cdtools.load_pair(world.before, world.after)
        mask = rioxarray.open_rasterio(world.change_mask).squeeze("band", drop=True)
        mask = mask.astype(np.float32).rio.write_nodata(None)
        true_regions = cdtools.predictions_to_regions(mask, threshold=0.5, closing=0, opening=0)
        true_labels = label_regions(read_change_map(mask), true_regions.attrs)
        prob = detector.predict(world.before, world.after)
        found = cdtools.predictions_to_regions(prob, threshold=detector.threshold)
        found_labels = label_regions(read_change_map(prob), found.attrs)
        for tta in (True, False):
            rows["truth", tta].append(
                score(true_regions, true_labels, world, pair, classifier, tta)
            )
            rows["predicted", tta].append(score(found, found_labels, world, pair, classifier, tta))
        on_change = (found_labels > 0) & (read(world.change_mask) > 0)
        overlap = float(on_change.sum() / max((found_labels > 0).sum(), 1))
        public = {
            k: {a: b for a, b in v[-1].items() if not a.startswith("_")} for k, v in rows.items()
        }
        predicted = {**public["predicted", True], "share_on_true_change": round(overlap, 4)}
        scenes.append(
            {"seed": seed, "truth_regions": public["truth", True], "predicted_regions": predicted}
        )
        print(
            f"seed {seed}: truth regions {public['truth', True]['agreement']:.3f} of "
            f"{public['truth', True]['area_m2']:.0f} m2 agree; predicted regions "
            f"{public['predicted', True]['agreement']:.3f} of "
            f"{public['predicted', True]['area_m2']:.0f} m2"
        )
    result = {
        "benchmark": "transitions_sample",
        "protocol": (
            f"sample scenes {args.seeds} ({args.size} px, 0.5 m), never used for training; "
            "regions from the true change mask and from sample_detector's prediction; "
            "patches of the classifier's input size centred on each region, classified with "
            "test-time augmentation (8 flips and turns; also reported without); truth = "
            "majority land-cover class inside the region on each date; agreement = share of "
            "region area whose classified before AND after class are the true ones; "
            "'confident' = both confidences >= 0.55, as transitions() keeps by default"
        ),
        "classifier": {
            "recipe": LANDCOVER_RECIPE,
            "train_or_load_seconds": round(train_seconds, 1),
            "weights": classifier.spec.training.get("weights"),
            "validation_accuracy": classifier.spec.metrics.get("accuracy"),
            "validation_per_class": classifier.spec.metrics.get("per_class_accuracy"),
        },
        "held_out_patches": held_out,
        "truth_regions": pooled(rows["truth", True]),
        "predicted_regions": pooled(rows["predicted", True]),
        "without_tta": {
            "truth_regions": pooled(rows["truth", False])["agreement"],
            "predicted_regions": pooled(rows["predicted", False])["agreement"],
        },
        "scenes": scenes,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"pooled: truth regions {result['truth_regions']['agreement']:.3f}, "
        f"predicted regions {result['predicted_regions']['agreement']:.3f} "
        f"(without TTA {result['without_tta']['truth_regions']:.3f}, "
        f"{result['without_tta']['predicted_regions']:.3f}); wrote {args.out}"
    )


if __name__ == "__main__":
    main()
