"""Accuracy on SZTAKI AirChange (real aerial pairs, 1.5 m): the usual protocol.

Train on every pair but Szada/1 and Tiszadob/3, test on those two full images. For each
architecture: precision, recall and F1 of change per test pair and pooled, and the
training time; beside it, in the same run, the naive |after - before| baseline with its
threshold chosen using the truth. Models are trained from scratch (no ImageNet weights
can be downloaded here); on a machine that has them, pass --pretrained auto.

    python benchmarks/accuracy_airchange.py [--data ../shared/data/sztaki_airchange] [--epochs 10]

Writes benchmarks/results/accuracy_airchange.json. Nothing from the data folder is copied.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import warnings
from pathlib import Path

import numpy as np
import rasterio
import torch
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning
from training import ARCHS, naive, pooled, score, throughput, train

from cdtools.baseline import best_threshold, difference_score
from cdtools.chips.export import export_training_data

RESULTS = Path(__file__).parent / "results" / "accuracy_airchange.json"
DEFAULT_DATA = (
    Path(os.environ.get("CDTOOLS_REAL_DATA", Path(__file__).parents[2] / "shared" / "data"))
    / "sztaki_airchange"
)
TEST_PAIRS = ("Szada/1", "Tiszadob/3")
# The part of each test image that the literature scores: the top-left 784 x 448 pixels
# (Zhan et al. 2017, whose protocol Daudt et al. 2018 follow; its F1 figures are over it).
LITERATURE_WINDOW = (slice(0, 448), slice(0, 784))


def read(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return src.read()


def resampled(data: Path, target: Path, scale: float) -> Path:
    """A copy of AirChange (``data``) at ``target`` with every image and label resampled by
    ``scale``, made once. Finer (scale > 1): images bicubic, labels nearest. Coarser:
    both averaged over the pixels each new one covers, a label pixel being change where
    most of what it covers is."""
    finer = scale > 1
    for first in data.rglob("im1.png"):
        folder = target / first.parent.relative_to(data)
        if folder.exists():
            continue
        folder.mkdir(parents=True)
        for name in ("im1.png", "im2.png", "gt.png"):
            image = Image.open(first.parent / name)
            size = (round(image.width * scale), round(image.height * scale))
            label = name == "gt.png"
            if finer:
                method = Image.Resampling.NEAREST if label else Image.Resampling.BICUBIC
                image.resize(size, method).save(folder / name)
                continue
            small = image.resize(size, Image.Resampling.BOX)
            (small.point(lambda v: 255 if v > 127 else 0) if label else small).save(folder / name)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--chip-size", type=int, default=128)
    parser.add_argument("--stride", type=int, default=128)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not args.data.exists():
        raise SystemExit(f"SZTAKI AirChange not found at {args.data}; pass --data.")
    pairs = sorted(str(p.parent.relative_to(args.data)) for p in args.data.rglob("im1.png"))
    train_pairs = [p for p in pairs if p not in TEST_PAIRS]
    work = Path(tempfile.mkdtemp(prefix="cdtools-airchange-"))
    chips = [
        export_training_data(
            args.data / p / "im1.png", args.data / p / "im2.png", args.data / p / "gt.png",
            work / p.replace("/", "_"), chip_size=args.chip_size, stride=args.stride,
            image_format="png", progress=False,
        )
        for p in train_pairs
    ]  # fmt: skip
    truth = {p: (read(args.data / p / "gt.png")[0] > 127).astype(np.uint8) for p in TEST_PAIRS}
    images = {
        p: (read(args.data / p / "im1.png"), read(args.data / p / "im2.png")) for p in TEST_PAIRS
    }
    baseline = [{"pair": p, **naive(*images[p], truth[p])} for p in TEST_PAIRS]
    # Pooled naive: one threshold for both pairs' pixels together, chosen with the truth.
    naive_pooled = best_threshold(
        np.concatenate([difference_score(*images[p]).ravel() for p in TEST_PAIRS]),
        np.concatenate([truth[p].ravel() for p in TEST_PAIRS]),
    )
    results = []
    for arch in args.archs.split(","):
        detector, seconds = train(
            arch, chips, epochs=args.epochs, lr=args.lr, chip_size=args.chip_size
        )
        rows = []
        for p in TEST_PAIRS:
            prob = detector.predict(*images[p]).values
            rows.append({"pair": p, **score(prob, truth[p], detector.threshold)})
        result = {
            "arch": arch,
            "train_seconds": round(seconds, 1),
            "train_chips": len(detector.data.train_ds),
            "threshold": detector.threshold,
            "test_pairs": [{k: v for k, v in r.items() if k != "counts"} for r in rows],
            "pooled": pooled(rows),
            "train_chips_per_s_256_batch8": throughput(arch),
        }
        results.append(result)
        per_pair = ", ".join(f"{r['pair']} {r['f1']:.3f}" for r in result["test_pairs"])
        print(
            f"{arch:13s} F1 {per_pair}; pooled {result['pooled']['f1']:.3f} "
            f"(trained {seconds:.0f} s)"
        )
    per_pair = ", ".join(f"{b['pair']} {b['f1']:.3f}" for b in baseline)
    print(f"{'naive':13s} F1 {per_pair} (best threshold per pair, chosen with the truth)")
    out = {
        "benchmark": "accuracy_airchange",
        "protocol": f"train on {len(train_pairs)} pairs ({', '.join(train_pairs)}), test on the "
        f"full images of {', '.join(TEST_PAIRS)}; chips {args.chip_size} px at stride "
        f"{args.stride}, {args.epochs} epochs from scratch, lr {args.lr}, batch 8",
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}",
        "naive_baseline": {
            "test_pairs": baseline,
            "pooled": {k: naive_pooled[k] for k in ("precision", "recall", "f1")},
        },
        "models": results,
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
