"""Real change on real imagery: every architecture with the default recipe, side by side.

Two sets, one run:

- SZTAKI AirChange (aerial RGB, 1.5 m): train on the 11 pairs other than Szada/1 and
  Tiszadob/3, test on those two full images; each is also scored over the literature's
  window, its top-left 784 x 448 pixels, where the published F1 figures were measured.
- Landsat Taizhou -> Nanjing (6 bands, 30 m, sparse labels): train on Taizhou's labelled
  pixels, test on Nanjing's (every unlabelled pixel is left out of the scores).

Each architecture follows the default path of cdtools: ``prepare_data`` ->
``ChangeDetector(dls, arch=...)`` -> ``fit(epochs)`` -> ``tune_threshold`` -> ``predict``,
and is scored with and without test-time augmentation (precision, recall and F1 of change
per test image and pooled, training seconds, parameters, inference Mpx/s). Beside them:
the naive |after - before| with its threshold chosen using the truth (an ORACLE, not a
method anyone can run), and the nearest peer, torchgeo's FCSiamDiff, trained on the same
chips for the same wall-clock budget as cdtools' default architecture, in its own
virtual environment (.peer-venv, made here on first use: torchgeo 0.8.1 and its torch).

    python benchmarks/accuracy_real.py [--sets airchange,landsat] [--archs fc_siam_conc,...]

Writes benchmarks/results/accuracy_real.json. Nothing from the data folder is copied.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accuracy_airchange import LITERATURE_WINDOW, TEST_PAIRS, read
from training import pooled, score, throughput

from cdtools.baseline import best_threshold, difference_score
from cdtools.chips.data import prepare_data
from cdtools.chips.export import export_training_data
from cdtools.chips.sparse_labels import masks_to_labels
from cdtools.learn.detector import ChangeDetector
from cdtools.learn.losses import BCEDiceLoss

ROOT = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results" / "accuracy_real.json"
REAL_DATA = Path(os.environ.get("CDTOOLS_REAL_DATA", ROOT.parent / "shared" / "data"))
PEER_VENV = ROOT / ".peer-venv"
PEER_PACKAGES = ("torchgeo==0.8.1", "requests")  # torchgeo.models needs requests, undeclared
ARCHS = ("fc_siam_conc", "fc_siam_diff", "fc_ef", "tinycd", "siamese_unet")
DEFAULT_ARCH = "fc_siam_conc"


@dataclass
class Task:
    """One real set: training chips and whole test pairs with their truth (255 = unlabelled)."""

    name: str
    chips: list[Path]
    chip_size: int
    epochs: int
    tests: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    protocol: str = ""
    # the part of a test image that published figures are measured over, where it is not all
    windows: dict[str, tuple[slice, slice]] = field(default_factory=dict)

    def window_scores(self, probs: dict[str, np.ndarray], threshold: float) -> dict[str, Any]:
        """Precision, recall and F1 of change over each test image's window."""
        return {
            name: {
                k: v
                for k, v in score(probs[name][w], self.tests[name][2][w], threshold).items()
                if k != "counts"
            }
            for name, w in self.windows.items()
        }


def airchange(data: Path, work: Path, *, epochs: int) -> Task:
    data = data / "sztaki_airchange"
    pairs = sorted(str(p.parent.relative_to(data)) for p in data.rglob("im1.png"))
    train = [p for p in pairs if p not in TEST_PAIRS]
    chips = [
        export_training_data(
            data / p / "im1.png", data / p / "im2.png", data / p / "gt.png",
            work / "airchange" / p.replace("/", "_"), chip_size=128, stride=128,
            image_format="png", progress=False,
        )
        for p in train
    ]  # fmt: skip
    tests = {
        p: (
            read(data / p / "im1.png"),
            read(data / p / "im2.png"),
            (read(data / p / "gt.png")[0] > 127).astype(np.uint8),
        )
        for p in TEST_PAIRS
    }
    protocol = (
        f"train on {len(train)} pairs ({', '.join(train)}), test on the full images of "
        f"{', '.join(TEST_PAIRS)}; 'literature_window': the same maps scored over the top-left "
        "784 x 448 pixels of each, the published figures' test region"
    )
    windows = dict.fromkeys(TEST_PAIRS, LITERATURE_WINDOW)
    return Task("airchange", chips, 128, epochs, tests, protocol, windows)


LANDSAT = {
    "Taizhou": ("2000TM", "2003TM"),
    "Nanjing": ("LT51200382000124BJC00_Nanjing", "LT51200382002193BJC00_Nanjing"),
}


def landsat(data: Path, work: Path, *, epochs: int) -> Task:
    data = data / "landsat_taizhou_nanjing"
    labels = {}
    for city, (before, _) in LANDSAT.items():
        labels[city] = masks_to_labels(
            data / city / "change.bmp", data / city / "unchanged.bmp",
            work / f"{city}_labels.tif", like=data / city / before, overwrite=True,
        )  # fmt: skip
    before, after = (data / "Taizhou" / name for name in LANDSAT["Taizhou"])
    chips = export_training_data(
        before, after, labels["Taizhou"], work / "landsat" / "Taizhou", chip_size=64,
        stride=32, progress=False,
    )  # fmt: skip
    test = [read(data / "Nanjing" / name) for name in LANDSAT["Nanjing"]]
    tests = {"Nanjing": (test[0], test[1], read(labels["Nanjing"])[0])}
    protocol = (
        "train on Taizhou 2000/2003 (sparse labels: change.bmp = 1, unchanged.bmp = 0, other "
        "pixels ignored), test on Nanjing 2000/2002 over its labelled pixels only"
    )
    return Task("taizhou_to_nanjing", [chips], 64, epochs, tests, protocol)


def naive_oracle(task: Task) -> dict[str, Any]:
    """The naive score's best threshold per test image and pooled, chosen WITH the truth."""
    per_image = {
        name: best_threshold(difference_score(b, a), truth)
        for name, (b, a, truth) in task.tests.items()
    }
    together = best_threshold(
        np.concatenate([difference_score(b, a).ravel() for b, a, _ in task.tests.values()]),
        np.concatenate([t.ravel() for *_, t in task.tests.values()]),
    )
    windows = {}
    for name, w in task.windows.items():
        before, after, truth = task.tests[name]
        windows[name] = best_threshold(difference_score(before, after)[w], truth[w])
    return {
        "label": "ORACLE: |after - before| with its threshold chosen using the test truth",
        "test": per_image,
        "pooled": {k: together[k] for k in ("precision", "recall", "f1")},
    } | ({"literature_window": windows} if windows else {})


def run_arch(
    task: Task,
    arch: str,
    *,
    precision: str = "auto",
    lr: float | None = None,
    seed: int = 0,
    arch_kwargs: dict[str, Any] | None = None,
    loss_options: dict[str, Any] | None = None,
    transforms: str = "default",
) -> dict[str, Any]:
    torch.manual_seed(seed)
    dls = prepare_data(task.chips, chip_size=task.chip_size, seed=seed, transforms=transforms)
    loss = BCEDiceLoss(**loss_options) if loss_options else None  # None: the default's
    detector = ChangeDetector(dls, arch=arch, pretrained=False, loss=loss, **(arch_kwargs or {}))
    start = time.perf_counter()
    with detector.learn.no_bar(), detector.learn.no_logging():
        detector.fit(task.epochs, lr=lr, precision=precision)
    seconds = time.perf_counter() - start
    detector.tune_threshold()
    result: dict[str, Any] = {
        "arch": arch,
        "parameters": sum(p.numel() for p in detector.model.parameters()),
        "train_seconds": round(seconds, 1),
        "epochs": task.epochs,
        "precision": detector.spec.training["last_fit"]["precision"],
        "norm": detector.spec.stats.source,
        "train_chips": len(dls.train_ds),
        "lr": detector.spec.training["last_fit"]["lr"],
        "seed": seed,
        "transforms": transforms,
        "arch_kwargs": detector.spec.arch_kwargs,
        "loss_options": loss_options or {},
        "threshold": detector.threshold,
    }
    for tta in (False, True):
        rows, probs, pixels, elapsed = [], {}, 0, 0.0
        for name, (before, after, truth) in task.tests.items():
            start = time.perf_counter()
            probs[name] = prob = detector.predict(before, after, tta=tta).values
            elapsed += time.perf_counter() - start
            pixels += prob.size
            rows.append({"image": name, **score(prob, truth, detector.threshold)})
        key = "tta" if tta else "plain"
        result[key] = {
            "test": {r["image"]: {k: r[k] for k in ("precision", "recall", "f1")} for r in rows},
            "pooled": pooled(rows),
            "mpx_per_s": round(pixels / 1e6 / elapsed, 3),
        }
        if task.windows:
            result[key]["literature_window"] = task.window_scores(probs, detector.threshold)
    result["train_chips_per_s"] = {  # batches of 8 chips of 128 px, on random data
        precision: throughput(arch, bands=dls.n_bands, size=128, precision=precision)
        for precision in ("fp32", "bf16")
    }
    result["_detector"] = detector
    return result


def peer_python() -> Path:
    """The peer's interpreter, in a virtual environment of its own (made when missing)."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print(f"making {PEER_VENV} with {' '.join(PEER_PACKAGES)} (a few minutes)", flush=True)
        venv.create(PEER_VENV, with_pip=True)
    check = subprocess.run([python, "-c", "import torchgeo.models"], capture_output=True)
    if check.returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
    return python


def run_peer(task: Task, detector: ChangeDetector, budget: float, work: Path) -> dict[str, Any]:
    """torchgeo's FCSiamDiff on the same training and validation chips for ``budget`` s."""
    folder = work / f"peer_{task.name}"
    folder.mkdir(exist_ok=True)
    tests = []
    for name, (before, after, _) in task.tests.items():
        stem = folder / name.replace("/", "_")
        np.save(f"{stem}.before.npy", before.astype(np.float32))
        np.save(f"{stem}.after.npy", after.astype(np.float32))
        tests.append({"name": name, "before": f"{stem}.before.npy", "after": f"{stem}.after.npy"})
    data = detector.data

    def files(ds: Any) -> list[list[str]]:
        return [[str(c.before), str(c.after), str(c.label)] for c in ds.chips]

    job = {
        "train": files(data.train_ds),
        "valid": files(data.valid_ds),
        "mean": list(data.stats.mean),
        "std": list(data.stats.std),
        "chip_size": task.chip_size,
        "budget_seconds": budget,
        "threads": torch.get_num_threads(),
        "tile": 256 if task.chip_size >= 128 else 128,
        "test": tests,
        "result": str(folder / "result.json"),
    }
    (folder / "job.json").write_text(json.dumps(job))
    script = Path(__file__).parent / "peer_torchgeo.py"
    subprocess.run([peer_python(), script, folder / "job.json"], check=True)
    summary = json.loads((folder / "result.json").read_text())
    rows, probs = [], {}
    for test in summary.pop("test"):
        probs[test["name"]] = prob = np.load(test["before"].replace(".before.npy", ".peer.npy"))
        truth = task.tests[test["name"]][2]
        rows.append({"image": test["name"], **score(prob, truth, summary["threshold"])})
        summary.setdefault("mpx_per_s", []).append(test["mpx_per_s"])
    summary["test"] = {r["image"]: {k: r[k] for k in ("precision", "recall", "f1")} for r in rows}
    summary["pooled"] = pooled(rows)
    if task.windows:
        summary["literature_window"] = task.window_scores(probs, summary["threshold"])
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REAL_DATA)
    parser.add_argument("--sets", default="airchange,landsat")
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--epochs-airchange", type=int, default=12)
    parser.add_argument("--epochs-landsat", type=int, default=40)
    parser.add_argument("--precision", default="auto", help="the default; fp32 to compare")
    parser.add_argument("--lr", type=float, help="one-cycle peak (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0, help="weights, split and batches")
    parser.add_argument("--dropout", type=float, help="the FC networks' (default: their own)")
    parser.add_argument("--width", type=int, help="the FC networks' first level (default: 16)")
    parser.add_argument(
        "--tversky-beta", type=float, help="BCEDiceLoss's tversky_beta (default: 0.5, Dice)"
    )
    parser.add_argument(
        "--transforms", default="default", help="prepare_data's augmentation (default: its own)"
    )
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (args.data / "sztaki_airchange").exists():
        raise SystemExit(f"the real data is not at {args.data}; pass --data.")
    work = Path(tempfile.mkdtemp(prefix="cdtools-real-"))
    options = {} if args.dropout is None else {"dropout": args.dropout}
    options |= {} if args.width is None else {"width": args.width}
    loss_options = {} if args.tversky_beta is None else {"tversky_beta": args.tversky_beta}
    makers = {
        "airchange": (airchange, args.epochs_airchange),
        "landsat": (landsat, args.epochs_landsat),
    }
    out = json.loads(args.out.read_text()) if args.out.exists() else {"sets": {}}
    out["machine"] = f"{platform.machine()}, {torch.get_num_threads()} threads, cpu"
    out["recipe"] = (
        "the default path (norm='scene', precision='auto', one-cycle at 3e-3, the best epoch "
        "by validation loss kept): prepare_data(chips, chip_size) -> ChangeDetector(dls, arch) -> "
        "fit(epochs) -> tune_threshold() -> predict(before, after[, tta=True])"
    )
    for name in args.sets.split(","):
        maker, epochs = makers[name]
        task = maker(args.data, work, epochs=epochs)
        result: dict[str, Any] = {"protocol": task.protocol, "naive": naive_oracle(task)}
        result["models"] = []
        default = None
        for arch in args.archs.split(","):
            row = run_arch(
                task, arch, precision=args.precision, lr=args.lr, seed=args.seed,
                arch_kwargs=options, loss_options=loss_options, transforms=args.transforms,
            )  # fmt: skip
            detector = row.pop("_detector")
            if arch == DEFAULT_ARCH:
                default = (detector, row["train_seconds"])
            result["models"].append(row)
            print(
                f"{task.name} {arch:13s} pooled F1 {row['plain']['pooled']['f1']:.3f} "
                f"(tta {row['tta']['pooled']['f1']:.3f}) "
                + " ".join(f"{k} {v['f1']:.3f}" for k, v in row["plain"]["test"].items())
                + "".join(
                    f" ({k} window {v['f1']:.3f})"
                    for k, v in row["plain"].get("literature_window", {}).items()
                )
                + f" trained {row['train_seconds']:.0f} s",
                flush=True,
            )
        if default is not None and not args.no_peer:
            result["peer"] = run_peer(task, *default, work)
            result["peer"]["budget"] = f"the wall-clock training time of {DEFAULT_ARCH}"
            print(f"{task.name} torchgeo peer pooled F1 {result['peer']['pooled']['f1']:.3f}")
        print(f"{task.name} naive ORACLE pooled F1 {result['naive']['pooled']['f1']:.3f}")
        out["sets"][task.name] = result
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
