"""Naive change detection on the sample world: threshold |after - before|, best case.

Each date is z-scored per band, the absolute differences are summed over bands, and
the threshold is swept over quantiles of that score; the best F1 against the change
mask is kept (chosen with the truth, so this is an upper bound for the naive method).
A trained model should beat it clearly; the sample world's pseudo-change keeps it low.

Usage:
    python benchmarks/naive_baseline.py --size 1024 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio

from cdtools.baseline import QUANTILES, naive_baseline
from cdtools.io.raster import atomic_path
from cdtools.synthetic import make_scene_pair


def evaluate(size: int, seed: int, folder: Path) -> dict[str, float]:
    """Make one sample world and score the naive baseline on it."""
    start = time.perf_counter()
    world = make_scene_pair(folder / f"seed{seed}", size=size, seed=seed, overwrite=True)
    seconds = time.perf_counter() - start
    with (
        rasterio.open(world.before) as b,
        rasterio.open(world.after) as a,
        rasterio.open(world.change_mask) as m,
    ):
        figures = naive_baseline(b.read(), a.read(), m.read(1))
    return {"seed": seed, **figures, "make_seconds": round(seconds, 2)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/naive_baseline.json"))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        runs = [evaluate(args.size, seed, Path(tmp)) for seed in seeds]
    result = {
        "benchmark": "naive |after - before| threshold on the synthetic sample world",
        "method": "per-date per-band z-score, sum of |difference| over bands, "
        f"threshold swept over {QUANTILES} quantiles, best F1 chosen with the truth",
        "size": args.size,
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "runs": runs,
        "mean": {
            key: round(float(np.mean([r[key] for r in runs])), 4)
            for key in ("f1", "precision", "recall", "change_fraction")
        },
    }
    with atomic_path(args.out) as tmp_path:
        tmp_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'seed':>6} {'F1':>7} {'prec':>7} {'recall':>7} {'change':>7} {'make s':>7}")
    for r in runs:
        print(
            f"{r['seed']:>6} {r['f1']:>7.3f} {r['precision']:>7.3f} {r['recall']:>7.3f} "
            f"{r['change_fraction']:>7.3f} {r['make_seconds']:>7.2f}"
        )
    mean = result["mean"]
    print(f"{'mean':>6} {mean['f1']:>7.3f} {mean['precision']:>7.3f} {mean['recall']:>7.3f}")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
