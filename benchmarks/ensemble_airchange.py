"""Whether averaging several trainings of the default path closes the Szada/1 gap.

One training of FC-Siam-conc on AirChange varies by about 0.05 F1 of change on Szada/1
from seed to seed (``airchange_protocol.py``, ``threshold_rule.py``): part of the error is
the noise of one run. This script trains the default path (``ChangeDetector(dls, arch)``,
``fit(12)``, ``tune_threshold``) several times on the same chips and the same validation
split, each member from its own seed (weights, batches, augmentation), and scores

- each member alone, at its own tuned threshold;
- the mean change probability of the first k members, k = 2 .. n, at the threshold that
  ``tune_threshold``'s rule (:func:`supported_f1_threshold`) picks from the mean's
  validation histograms.

F1 of change on the full test images and over the literature's window, with the seconds
each member trained (the ensemble's training time is their sum).

    python benchmarks/ensemble_airchange.py [--seeds 0,1,2,3,4] [--archs fc_siam_conc]

``--archs`` cycles over the members (``fc_siam_conc,fc_ef``: members 0, 2, 4 are
FC-Siam-conc, 1, 3 FC-EF). Writes benchmarks/results/ensemble_airchange.json under the
run's name (``--name``, default the archs), about 2-3 minutes per member on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accuracy_real import REAL_DATA, airchange
from training import pooled, score

from cdtools.chips.data import prepare_data
from cdtools.learn.detector import ChangeDetector
from cdtools.learn.metrics import probability_histogram, supported_f1_threshold

RESULTS = Path(__file__).parent / "results" / "ensemble_airchange.json"
EPOCHS = 12  # accuracy_real.py's for AirChange
BINS = 200  # tune_threshold's


def member(chips: list[Path], arch: str, seed: int, epochs: int) -> dict[str, Any]:
    """One training of the default path on the split of seed 0, weights and batches of ``seed``."""
    dls = prepare_data(chips, chip_size=128, seed=0)  # the same validation chips for all
    torch.manual_seed(seed)
    detector = ChangeDetector(dls, arch=arch, pretrained=False)
    start = time.perf_counter()
    with detector.learn.no_bar(), detector.learn.no_logging():
        detector.fit(epochs)
    seconds = time.perf_counter() - start
    detector.tune_threshold()
    valid = [detector.validation_batch(batch=b)[2:] for b in range(len(dls.valid))]
    return {"detector": detector, "seconds": seconds, "valid": valid}


def evaluate(
    probs: dict[str, np.ndarray], tests: dict[str, Any], windows: dict[str, Any], threshold: float
) -> dict[str, Any]:
    rows = {name: score(probs[name], truth, threshold) for name, (_, _, truth) in tests.items()}
    return {
        "threshold": threshold,
        "test": {name: row["f1"] for name, row in rows.items()},
        "pooled": pooled(list(rows.values()))["f1"],
        "literature_window": {
            name: score(probs[name][w], tests[name][2][w], threshold)["f1"]
            for name, w in windows.items()
        },
    }


def line(label: str, result: dict[str, Any]) -> str:
    return (
        f"{label:24s} pooled {result['pooled']:.3f} "
        + " ".join(f"{k} {v:.3f}" for k, v in result["test"].items())
        + " window "
        + " ".join(f"{v:.3f}" for v in result["literature_window"].values())
        + f" (threshold {result['threshold']:.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REAL_DATA)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--archs", default="fc_siam_conc")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--name", default=None, help="the run's key in the JSON")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (args.data / "sztaki_airchange").exists():
        raise SystemExit(f"SZTAKI AirChange not found under {args.data}; pass --data.")
    work = Path(tempfile.mkdtemp(prefix="cdtools-ensemble-"))
    task = airchange(args.data, work, epochs=args.epochs)
    seeds = [int(s) for s in args.seeds.split(",")]
    archs = args.archs.split(",")
    members, tests = [], {}
    for i, seed in enumerate(seeds):
        arch = archs[i % len(archs)]
        trained = member(task.chips, arch, seed, args.epochs)
        detector = trained["detector"]
        probs = {
            name: detector.predict(before, after).values
            for name, (before, after, _) in task.tests.items()
        }
        alone = evaluate(probs, task.tests, task.windows, detector.threshold)
        members.append(trained | {"probs": probs, "arch": arch, "seed": seed, "alone": alone})
        label = f"member {i} {arch} s{seed}"
        print(line(label, alone) + f" {trained['seconds']:.0f} s", flush=True)
    for k in range(2, len(members) + 1):
        chosen = members[:k]
        counts = np.stack(
            [
                probability_histogram(
                    torch.stack([m["valid"][b][1][c] for m in chosen]).mean(0), mask[c], bins=BINS
                )
                for b, (mask, _) in enumerate(chosen[0]["valid"])
                for c in range(len(mask))
            ]
        )
        probs = {name: np.mean([m["probs"][name] for m in chosen], axis=0) for name in task.tests}
        tests[k] = evaluate(probs, task.tests, task.windows, supported_f1_threshold(counts))
        tests[k]["train_seconds"] = round(sum(m["seconds"] for m in chosen), 1)
        print(line(f"mean of {k}", tests[k]), flush=True)
    out = json.loads(args.out.read_text()) if args.out.exists() else {"runs": {}}
    out["protocol"] = (
        f"{task.protocol}; every member the default path (fit({args.epochs}), tune_threshold) "
        "on the same chips and validation split (prepare_data seed 0), weights and batches "
        "from its own seed; 'mean of k': the mean change probability of members 0..k-1 at the "
        "supported threshold of the mean's validation histograms"
    )
    out["machine"] = f"{platform.machine()}, {torch.get_num_threads()} threads, cpu"
    out["runs"][args.name or args.archs] = {
        "members": [
            {"arch": m["arch"], "seed": m["seed"], "train_seconds": round(m["seconds"], 1)}
            | m["alone"]
            for m in members
        ],
        "mean_of": tests,
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
