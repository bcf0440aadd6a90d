"""Accuracy on the sample world: train on some seeds' scenes, test on other seeds' scenes.

Each architecture is trained from scratch on chips of the training scenes, its threshold
tuned on their validation chips, then it predicts the whole test scenes (tiled, blended)
and is scored against their change masks, beside the naive |after - before| baseline
(whose threshold is chosen with the truth). Training throughput at 256 x 256, batch 8,
is measured for each architecture in the same run.

    python benchmarks/accuracy_sample.py [--train-seeds 0,1,2] [--test-seeds 7,8] [--epochs 8]

Writes benchmarks/results/accuracy_sample.json; architectures measured earlier under the
same protocol stay in it beside those of this run.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import rasterio
import torch
from training import ARCHS, naive, pooled, score, throughput, train

from cdtools.chips.export import export_training_data
from cdtools.learn.losses import BCEDiceLoss
from cdtools.synthetic import make_scene_pair

RESULTS = Path(__file__).parent / "results" / "accuracy_sample.json"


def read(path: Path):
    with rasterio.open(path) as src:
        return src.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--train-seeds", default="0,1,2")
    parser.add_argument("--test-seeds", default="7,8")
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--chip-size", type=int, default=128)
    parser.add_argument("--norm", default=None, help="prepare_data's norm (default: its own)")
    parser.add_argument(
        "--tversky-beta", type=float, help="BCEDiceLoss's tversky_beta (default: the loss's own)"
    )
    parser.add_argument("--seed", type=int, default=0, help="weights, split and batches")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    work = Path(tempfile.mkdtemp(prefix="cdtools-accuracy-"))
    train_seeds = [int(s) for s in args.train_seeds.split(",")]
    test_seeds = [int(s) for s in args.test_seeds.split(",")]
    chips = []
    for seed in train_seeds:
        world = make_scene_pair(work / f"train{seed}", size=args.size, seed=seed)
        chips.append(export_training_data(
            world.before, world.after, world.change_polygons, work / f"chips{seed}",
            chip_size=args.chip_size, stride=args.chip_size // 2, progress=False,
        ))  # fmt: skip
    tests = {s: make_scene_pair(work / f"test{s}", size=args.size, seed=s) for s in test_seeds}
    truth = {s: read(w.change_mask)[0] for s, w in tests.items()}
    baseline = [
        {"seed": s, **naive(read(w.before), read(w.after), truth[s])} for s, w in tests.items()
    ]
    loss = None if args.tversky_beta is None else BCEDiceLoss(tversky_beta=args.tversky_beta)
    results = []
    for arch in args.archs.split(","):
        detector, seconds = train(
            arch, chips, epochs=args.epochs, lr=args.lr, chip_size=args.chip_size,
            norm=args.norm, seed=args.seed, loss=loss,
        )  # fmt: skip
        rows = []
        for seed, world in tests.items():
            prob = detector.predict(world.before, world.after).values
            rows.append({"seed": seed, **score(prob, truth[seed], detector.threshold)})
        result = {
            "arch": arch,
            "train_seconds": round(seconds, 1),
            "precision": detector.spec.training["last_fit"]["precision"],
            "norm": detector.spec.stats.source,
            "train_chips": len(detector.data.train_ds),
            "threshold": detector.threshold,
            "test_scenes": [{k: v for k, v in r.items() if k != "counts"} for r in rows],
            "pooled": pooled(rows),
            "train_chips_per_s_256_batch8": throughput(arch),
        }
        results.append(result)
        print(
            f"{arch:13s} pooled F1 {result['pooled']['f1']:.3f} "
            f"(trained {seconds:.0f} s; {result['train_chips_per_s_256_batch8']} chips/s at 256)"
        )
    naive_pooled = {
        k: round(sum(b[k] for b in baseline) / len(baseline), 4)
        for k in ("precision", "recall", "f1")
    }
    print(f"{'naive':13s} mean F1 {naive_pooled['f1']:.3f} (threshold chosen with the truth)")
    protocol = (
        f"train on sample scenes {train_seeds}, test on whole scenes {test_seeds}, "
        f"{args.size} px, chips {args.chip_size} px at stride {args.chip_size // 2}, "
        f"{args.epochs} epochs from scratch (no pretrained weights), lr {args.lr}, batch 8"
        + (f", seed {args.seed}" if args.seed else "")
        + ("" if loss is None else f", BCEDiceLoss(tversky_beta={args.tversky_beta})")
    )
    # Architectures run earlier under the same protocol are kept beside this run's.
    earlier = json.loads(args.out.read_text()) if args.out.exists() else {}
    if earlier.get("protocol") == protocol:
        ran = {r["arch"] for r in results}
        results = [r for r in earlier["models"] if r["arch"] not in ran] + results
    out = {
        "benchmark": "accuracy_sample",
        "protocol": protocol,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
        f"{'cuda' if torch.cuda.is_available() else 'cpu'}",
        "naive_baseline": {"test_scenes": baseline, "mean": naive_pooled},
        "models": results,
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
