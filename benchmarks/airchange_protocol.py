"""Whether the literature's AirChange protocol explains the Szada/1 gap: both, side by side.

Published AirChange figures (FC-Siam-diff's F1 of 0.527 on Szada/1, Daudt et al. 2018)
are measured over the top-left 784 x 448 pixels of each test image, the protocol of Zhan
et al. 2017. Implementations of that protocol train on the rest of every image, the
L-shaped strip around each test window included; cdtools' benchmarks hold the two test
images out whole. This script trains the default path (``ChangeDetector(dls)``,
``fit(12)``, ``tune_threshold``: FC-Siam-conc, 128-pixel chips at stride 128) both ways,
seed by seed, and scores the same windows:

- ``held_out``: the 11 other pairs, as ``accuracy_real.py`` trains;
- ``literature``: those and the rest of Szada/1 and Tiszadob/3 around their windows, the
  strip to the right (x >= 784) and the strip below (y >= 448, x < 784), each exported as
  a pair of its own so that no training chip holds a pixel of a window.

    python benchmarks/airchange_protocol.py [--seeds 0,1,2]

Writes benchmarks/results/airchange_protocol.json (about 2 minutes per run on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from accuracy_airchange import LITERATURE_WINDOW
from accuracy_real import REAL_DATA, airchange
from PIL import Image
from training import default_path, pooled, score

from cdtools.chips.export import export_training_data

RESULTS = Path(__file__).parent / "results" / "airchange_protocol.json"
EPOCHS = 12  # the benchmark's (accuracy_real.py) for AirChange
ROWS, COLS = LITERATURE_WINDOW


def strips(pair: Path) -> dict[str, tuple[int, int, int, int]]:
    """The parts of a test image outside its window, as PIL boxes (left, top, right, bottom)."""
    width, height = Image.open(pair / "im1.png").size
    return {
        "right": (COLS.stop, 0, width, height),
        "below": (0, ROWS.stop, COLS.stop, height),
    }


def rest_chips(data: Path, pairs: list[str], work: Path) -> list[Path]:
    """Chips of the test images' strips outside their windows, at the benchmark's 128/128."""
    folders = []
    for name in pairs:
        pair = data / "sztaki_airchange" / name
        for part, box in strips(pair).items():
            cut = work / "strips" / f"{name.replace('/', '_')}_{part}"
            cut.mkdir(parents=True)
            for file in ("im1.png", "im2.png", "gt.png"):
                Image.open(pair / file).crop(box).save(cut / file)
            files = [cut / "im1.png", cut / "im2.png", cut / "gt.png"]
            out = work / "chips" / cut.name
            folders.append(
                export_training_data(
                    *files, out, chip_size=128, stride=128, image_format="png", progress=False
                )
            )
    return folders


def run(chips: list[Path], tests: dict[str, Any], seed: int) -> dict[str, Any]:
    detector, seconds = default_path(chips, chip_size=128, epochs=EPOCHS, seed=seed)
    rows = {}
    for name, (before, after, truth) in tests.items():
        prob = detector.predict(before, after).values
        rows[name] = score(prob[LITERATURE_WINDOW], truth[LITERATURE_WINDOW], detector.threshold)
    return {
        "seed": seed,
        "train_chips": len(detector.data.train_ds),
        "train_seconds": round(seconds, 1),
        "threshold": detector.threshold,
        "window": {n: {k: v for k, v in r.items() if k != "counts"} for n, r in rows.items()},
        "window_pooled": pooled(list(rows.values())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cdtools-protocol-"))
    task = airchange(REAL_DATA, work / "held_out", epochs=EPOCHS)
    protocols = {
        "held_out": list(task.chips),
        "literature": [*task.chips, *rest_chips(REAL_DATA, list(task.tests), work / "rest")],
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in protocols}
    for seed in (int(s) for s in args.seeds.split(",")):
        for name, chips in protocols.items():
            result = run(chips, task.tests, seed)
            runs[name].append(result)
            print(
                f"seed {seed} {name:10s} "
                + " ".join(f"{n} {r['f1']:.3f}" for n, r in result["window"].items())
                + f" pooled {result['window_pooled']['f1']:.3f}"
                + f" ({result['train_chips']} chips, {result['train_seconds']:.0f} s)",
                flush=True,
            )
    mean = {
        name: {
            pair: round(float(np.mean([r["window"][pair]["f1"] for r in rows])), 4)
            for pair in task.tests
        }
        for name, rows in runs.items()
    }
    out = {
        "protocol": (
            "default path (FC-Siam-conc, 12 epochs, threshold tuned on validation chips), "
            "F1 of change over the top-left 784 x 448 pixels of Szada/1 and Tiszadob/3; "
            "held_out: trained on the 11 other pairs; literature: those and the rest of the "
            "two test images outside their windows (strips exported as pairs of their own)"
        ),
        "runs": runs,
        "mean_window_f1": mean,
        "machine": platform.processor() or platform.machine(),
    }
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(mean, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
