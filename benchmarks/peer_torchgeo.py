"""The nearest peer, trained on cdtools' chips for a wall-clock budget: torchgeo's FCSiamDiff.

Runs inside its own virtual environment (torchgeo and its torch; no cdtools), made by
``accuracy_real.py``, which writes a job file and scores what this script predicts:

    .peer-venv/bin/python benchmarks/peer_torchgeo.py job.json

The job names the training and validation chips (before, after, label files: label 0/1
with 255 = ignore), the per-band normalisation, the chip size, the budget in seconds and
the test pairs (``.npy`` arrays of raw ``(bands, h, w)`` pixels). Training follows
torchgeo's change-detection defaults: FCSiamDiff (a U-Net on a ResNet-18 encoder, no
pretrained weights), binary cross-entropy, Adam at 1e-3, fp32, with the same flips and
quarter turns as cdtools' augmentation; it stops when the budget is spent. The threshold
is the F1-best of 39 on the validation chips (cdtools' ``tune_threshold`` did the same
until it moved to the supported threshold nearest 0.5; benchmarks/threshold_rule.py
measured the two even on AirChange). Each test pair's probability is written beside it
as ``<name>.peer.npy``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchgeo.models import FCSiamDiff

IGNORE = 255


def read(path: str) -> np.ndarray:
    if path.endswith((".tif", ".tiff")):
        import rasterio

        with rasterio.open(path) as src:
            return src.read()
    image = np.asarray(Image.open(path))
    return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)


def load(chips: list[list[str]], mean: np.ndarray, std: np.ndarray, size: int) -> tuple:
    before, after, labels = [], [], []
    for b, a, m in chips:
        x, y, label = read(b), read(a), read(m)[0]
        pad = ((0, 0), (0, max(size - x.shape[1], 0)), (0, max(size - x.shape[2], 0)))
        before.append(np.pad((x - mean) / std, pad)[:, :size, :size])
        after.append(np.pad((y - mean) / std, pad)[:, :size, :size])
        labels.append(np.pad(label, pad[1:], constant_values=IGNORE)[:size, :size])
    return (
        torch.tensor(np.stack(before), dtype=torch.float32),
        torch.tensor(np.stack(after), dtype=torch.float32),
        torch.tensor(np.stack(labels), dtype=torch.long),
    )


def loss_of(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    valid = labels != IGNORE
    return torch.nn.functional.binary_cross_entropy_with_logits(
        logits[:, 0][valid], (labels[valid] == 1).float()
    )


def augment(before: torch.Tensor, after: torch.Tensor, labels: torch.Tensor) -> tuple:
    k = int(torch.randint(4, ()))
    flip = bool(torch.rand(()) < 0.5)
    out = []
    for t in (before, after, labels):
        t = torch.rot90(t, k, dims=(-2, -1))
        out.append(t.flip(-1) if flip else t)
    return tuple(out)


def predict(model: torch.nn.Module, before: np.ndarray, after: np.ndarray, tile: int) -> np.ndarray:
    """Probability over a whole pair, tiles of ``tile`` overlapping by a quarter, averaged."""
    _, h, w = before.shape
    total, weight = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32)
    step = tile * 3 // 4

    def starts(n: int) -> list[int]:
        s = list(range(0, max(n - tile, 0) + 1, step))
        return s if s[-1] == max(n - tile, 0) else [*s, n - tile]

    with torch.inference_mode():
        for r in starts(h):
            for c in starts(w):
                window = (slice(None), slice(r, r + tile), slice(c, c + tile))
                x = torch.tensor(np.stack([before[window], after[window]]))[None]
                prob = torch.sigmoid(model(x.float()))[0, 0].numpy()
                total[r : r + tile, c : c + tile] += prob
                weight[r : r + tile, c : c + tile] += 1
    return total / weight


def best_threshold(prob: np.ndarray, labels: np.ndarray) -> float:
    valid = labels != IGNORE
    prob, truth = prob[valid], labels[valid] == 1
    best, best_f1 = 0.5, -1.0
    for t in np.linspace(0.025, 0.975, 39):
        tp = float((prob[truth] > t).sum())
        precision, recall = tp / max((prob > t).sum(), 1), tp / max(truth.sum(), 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    torch.manual_seed(0)
    torch.set_num_threads(job.get("threads", torch.get_num_threads()))
    mean = np.asarray(job["mean"], np.float32)[:, None, None]
    std = np.asarray(job["std"], np.float32)[:, None, None]
    size, batch = job["chip_size"], job.get("batch_size", 8)
    train = load(job["train"], mean, std, size)
    valid = load(job["valid"], mean, std, size)
    model = FCSiamDiff(
        encoder_name="resnet18", encoder_weights=None, in_channels=len(job["mean"]), classes=1
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    start, steps, epochs = time.perf_counter(), 0, 0
    while time.perf_counter() - start < job["budget_seconds"]:
        model.train()
        order = torch.randperm(len(train[0]))
        for i in range(0, len(order) - batch + 1, batch):
            before, after, labels = augment(*(t[order[i : i + batch]] for t in train))
            loss = loss_of(model(torch.stack([before, after], dim=1)), labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            steps += 1
            if time.perf_counter() - start >= job["budget_seconds"]:
                break
        epochs += 1
    seconds = time.perf_counter() - start
    model.eval()
    with torch.inference_mode():
        probs = [
            torch.sigmoid(model(torch.stack([valid[0][i : i + 16], valid[1][i : i + 16]], 1)))
            for i in range(0, len(valid[0]), 16)
        ]
    threshold = best_threshold(torch.cat(probs)[:, 0].numpy(), valid[2].numpy())
    tile = job.get("tile", 256)
    for test in job["test"]:
        before = (np.load(test["before"]) - mean) / std
        after = (np.load(test["after"]) - mean) / std
        t0 = time.perf_counter()
        prob = predict(model, before.astype(np.float32), after.astype(np.float32), tile)
        test["mpx_per_s"] = round(prob.size / 1e6 / (time.perf_counter() - t0), 3)
        np.save(test["before"].replace(".before.npy", ".peer.npy"), prob)
    summary = {
        "model": "torchgeo.models.FCSiamDiff(encoder_name='resnet18', encoder_weights=None)",
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(seconds, 1),
        "epochs_started": epochs,
        "steps": steps,
        "threshold": threshold,
        "test": job["test"],
    }
    Path(job["result"]).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
