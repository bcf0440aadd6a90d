"""Where Szada/1 loses F1: the default recipe's AirChange maps, taken apart.

Trains the default path once on AirChange (``accuracy_real.py``'s task: 11 pairs, 128-pixel
chips at stride 128; ``ChangeDetector(dls)``, ``fit(12)``, ``tune_threshold``) and scores its
maps of Szada/1 and Tiszadob/3 as they are, then with each thing that could be given to them
for free:

- threshold: each test image's best threshold, chosen WITH its truth (an ORACLE);
- context: the map predicted in 128-pixel tiles, the chips' size, against predict's own
  choice for these fully convolutional networks (tiles of 448 to 640 pixels);
- clean-up: the mask closed then opened with disks of radius 1 and 2, as
  ``cdtools.predictions_to_regions`` does;
- registration: the map shifted by the best offset of up to 3 pixels, chosen WITH the
  truth (an ORACLE);
- resolution (``--upsample 2``): every pair and label resampled x2 (bicubic, nearest) before
  export, the model trained again (``--upsample-epochs``), and its probability averaged
  back onto the original grid.

If none of them lifts Szada/1 much, what is missing is in the model, not around it.

    python benchmarks/airchange_gap.py [--seed 0] [--upsample 2 --upsample-epochs 8]

Writes benchmarks/results/airchange_gap.json (about 6 minutes, 10 more with --upsample).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from accuracy_airchange import resampled
from accuracy_real import REAL_DATA, airchange
from training import default_path, score

from cdtools.baseline import best_threshold
from cdtools.learn.detector import ChangeDetector
from cdtools.regions.table import clean_mask

RESULTS = Path(__file__).parent / "results" / "airchange_gap.json"
EPOCHS = 12  # the benchmark's (accuracy_real.py) for AirChange
SHIFT = 3


def f1(mask: np.ndarray, truth: np.ndarray) -> float:
    hits = np.count_nonzero(mask & truth)
    return round(2 * hits / max(np.count_nonzero(mask) + np.count_nonzero(truth), 1), 4)


def best_shift(mask: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """F1 of the mask moved by the best (dy, dx) within SHIFT pixels, scored away from the
    border that the move wraps around."""
    inner = (slice(SHIFT, -SHIFT),) * 2
    found = max(
        (f1(np.roll(mask, (dy, dx), (0, 1))[inner], truth[inner]), dy, dx)
        for dy in range(-SHIFT, SHIFT + 1)
        for dx in range(-SHIFT, SHIFT + 1)
    )
    return {
        "f1": found[0],
        "dy": found[1],
        "dx": found[2],
        "unshifted": f1(mask[inner], truth[inner]),
    }


def taken_apart(detector: ChangeDetector, tests: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (before, after, truth) in tests.items():
        prob = detector.predict(before, after).values
        change = truth.astype(bool)
        mask = prob > detector.threshold
        narrow = detector.predict(before, after, tile=128).values
        out[name] = {
            "as_is": score(prob, truth, detector.threshold),
            "ORACLE_threshold": best_threshold(prob, truth),
            "tile_128": f1(narrow > detector.threshold, change),
            "cleaned_r1": f1(clean_mask(prob, detector.threshold, 1, 1), change),
            "cleaned_r2": f1(clean_mask(prob, detector.threshold, 2, 2), change),
            "ORACLE_shift": best_shift(mask, change),
        }
        out[name]["as_is"].pop("counts")
    return out


def at_resolution(
    factor: int, epochs: int, seed: int, tests: dict[str, Any], work: Path
) -> dict[str, Any]:
    source = REAL_DATA / "sztaki_airchange"
    data = resampled(source, work / f"x{factor}" / "sztaki_airchange", factor).parent
    task = airchange(data, work / f"x{factor}_chips", epochs=epochs)
    detector, seconds = default_path(task.chips, chip_size=128, epochs=epochs, seed=seed)
    out: dict[str, Any] = {
        "factor": factor,
        "epochs": epochs,
        "train_chips": len(detector.data.train_ds),
        "train_seconds": round(seconds, 1),
        "threshold": detector.threshold,
    }
    for name, (before, after, _) in task.tests.items():
        prob = detector.predict(before, after).values
        h, w = prob.shape
        prob = prob.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
        truth = tests[name][2]
        out[name] = {
            "f1": score(prob, truth, detector.threshold)["f1"],
            "ORACLE_threshold_f1": best_threshold(prob, truth)["f1"],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--upsample", type=int, default=0, help="also train at this factor")
    parser.add_argument("--upsample-epochs", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cdtools-gap-"))
    task = airchange(REAL_DATA, work, epochs=EPOCHS)
    detector, seconds = default_path(task.chips, chip_size=128, epochs=EPOCHS, seed=args.seed)
    result: dict[str, Any] = {
        "protocol": task.protocol,
        "recipe": {
            "arch": detector.spec.arch,
            "epochs": EPOCHS,
            "seed": args.seed,
            "train_seconds": round(seconds, 1),
            "threshold": detector.threshold,
        },
        "maps": taken_apart(detector, task.tests),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(result["maps"], indent=1), flush=True)
    if args.upsample > 1:
        result["resolution"] = at_resolution(
            args.upsample, args.upsample_epochs, args.seed, task.tests, work
        )
        print(json.dumps(result["resolution"], indent=1), flush=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
