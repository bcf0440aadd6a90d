"""How far above the naive oracle can a model trained on these labels get on Nanjing?

Issue 11 asks for Taizhou -> Nanjing F1 at least 0.10 above the naive |after - before|
with its threshold chosen on the test truth. This benchmark asks whether the labels allow
it at all. Every row is scored on the same pixels, the labelled pixels of Nanjing's
bottom half (rows 400-800), and trained on one of two sources:

- ``taizhou``: every labelled pixel of Taizhou (the accuracy_real.py protocol);
- ``nanjing_top``: the labelled pixels of Nanjing's top half (rows 0-400), the same scene,
  sensor, dates and annotators as the test pixels: an in-domain ceiling.

The models: the naive score with its threshold chosen on the source's labels (a method
anyone can run), a per-pixel logistic regression on each date's z-scored bands and their
difference (threshold chosen on the source's labels too), and cdtools' default path
(``prepare_data`` -> ``ChangeDetector(dls)`` -> ``fit(40)`` -> ``tune_threshold``). Each
model's F1 with the test truth's best threshold is given beside it, as an oracle. Beside
them all: the naive oracle on the test pixels.

    python benchmarks/landsat_ceiling.py [--data ../shared/data] [--epochs 40]

Writes benchmarks/results/landsat_ceiling.json. Nothing from the data folder is copied.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from accuracy_airchange import read
from accuracy_real import LANDSAT, REAL_DATA, landsat
from training import default_path

from cdtools.baseline import best_threshold, difference_score, zscore
from cdtools.chips.export import export_training_data
from cdtools.io.raster import write_geotiff

RESULTS = Path(__file__).parent / "results" / "landsat_ceiling.json"
SPLIT = 400  # Nanjing rows above this train the in-domain rows; rows below are the test


def pixel_features(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``(pixels, 4 bands)``: each date z-scored over its image, their difference and its
    absolute value."""
    zb, za = zscore(before), zscore(after)
    stacked = np.concatenate([zb, za, za - zb, np.abs(za - zb)])
    return stacked.reshape(len(stacked), -1).T


def f1_at(score: np.ndarray, truth: np.ndarray, threshold: float) -> float:
    keep = truth != 255
    predicted, actual = score[keep] >= threshold, truth[keep] == 1
    hits = int((predicted & actual).sum())
    return round(2 * hits / max(int(predicted.sum() + actual.sum()), 1), 4)


def row(score: np.ndarray, truth: np.ndarray, threshold: float, **extra: Any) -> dict[str, Any]:
    oracle = best_threshold(score, truth)
    return {
        "f1": f1_at(score, truth, threshold),
        "threshold": round(float(threshold), 4),
        "f1_with_test_oracle_threshold": round(oracle["f1"], 4),
        **extra,
    }


def nanjing_top_chips(data: Path, labels: Path, work: Path) -> Path:
    """Nanjing's top half and its labels as GeoTIFFs on their own grid, cut into chips as
    accuracy_real.py cuts Taizhou (64 px, stride 32)."""
    paths = []
    sources = (data / "Nanjing" / LANDSAT["Nanjing"][0], data / "Nanjing" / LANDSAT["Nanjing"][1])
    for name, source in zip(("before", "after", "labels"), (*sources, labels), strict=True):
        with rasterio.open(source) as src:
            image, transform, crs, nodata = src.read(), src.transform, src.crs, src.nodata
        paths.append(
            write_geotiff(work / f"nanjing_top_{name}.tif", image[:, :SPLIT], transform=transform,
                          crs=crs, nodata=nodata)
        )  # fmt: skip
    return export_training_data(*paths, work / "chips_nanjing_top", chip_size=64, stride=32,
                                progress=False)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REAL_DATA)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (args.data / "landsat_taizhou_nanjing").exists():
        raise SystemExit(f"the Landsat pairs are not at {args.data}; pass --data.")
    from sklearn.linear_model import LogisticRegression

    work = Path(tempfile.mkdtemp(prefix="cdtools-ceiling-"))
    task = landsat(args.data, work, epochs=args.epochs)
    folder = args.data / "landsat_taizhou_nanjing"
    taizhou = [read(folder / "Taizhou" / name) for name in LANDSAT["Taizhou"]]
    taizhou_truth = read(work / "Taizhou_labels.tif")[0]
    before, after, truth = task.tests["Nanjing"]
    test = truth[SPLIT:]
    sources = {
        "taizhou": (taizhou[0], taizhou[1], taizhou_truth, task.chips[0]),
        "nanjing_top": (
            before, after, np.where(np.arange(len(truth))[:, None] < SPLIT, truth, 255),
            nanjing_top_chips(folder, work / "Nanjing_labels.tif", work),
        ),
    }  # fmt: skip
    naive_test = difference_score(before, after)[SPLIT:]
    features_test = pixel_features(before, after).reshape(*before.shape[1:], -1)[SPLIT:]
    out: dict[str, Any] = {
        "benchmark": "landsat_ceiling",
        "protocol": (
            "test: the labelled pixels of Nanjing rows 400-800; train: every labelled pixel of "
            "Taizhou, or of Nanjing rows 0-400 (in-domain); thresholds chosen on the training "
            "labels (cdtools: tune_threshold on its validation chips)"
        ),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, cpu",
        "test_pixels": {"change": int((test == 1).sum()), "no_change": int((test == 0).sum())},
        "naive_oracle": {"f1": round(best_threshold(naive_test, test)["f1"], 4),
                         "label": "ORACLE: threshold chosen with the test truth"},
        "sources": {},
    }  # fmt: skip
    for name, (b, a, labels, chips) in sources.items():
        keep = labels.ravel() != 255
        naive_cut = best_threshold(difference_score(b, a), labels)["threshold"]
        x, y = pixel_features(b, a)[keep], labels.ravel()[keep] == 1
        model = LogisticRegression(max_iter=2000).fit(x, y)
        cut = best_threshold(model.predict_proba(x)[:, 1], labels.ravel()[keep])["threshold"]
        logistic = model.predict_proba(features_test.reshape(-1, x.shape[1]))[:, 1]
        detector, seconds = default_path(chips, chip_size=64, epochs=args.epochs, seed=args.seed)
        change = detector.predict(before, after).values[SPLIT:].astype(np.float64)
        out["sources"][name] = {
            "train_pixels": {"change": int(y.sum()), "no_change": int((~y).sum())},
            "naive": row(naive_test, test, naive_cut),
            "logistic_per_pixel": row(logistic.reshape(test.shape), test, cut),
            "cdtools_default": row(change, test, detector.threshold, train_seconds=round(seconds)),
        }
        print(name, json.dumps(out["sources"][name]), flush=True)
    print("naive ORACLE", out["naive_oracle"]["f1"])
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
