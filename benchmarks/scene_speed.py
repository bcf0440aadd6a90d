"""Scene inference: predict_scene against the seed workflow's way, side by side.

For each scene size (sample worlds, 3-band uint8 GeoTIFFs) and each method, one fresh
process goes from the two GeoTIFFs to a change-probability GeoTIFF, and reports its
wall time (megapixels/s of scene) and peak RSS. The methods, all with the same model
(the sample detector, siamese U-Net on ResNet-18) and the same 1024-pixel dask chunks:

- ``baseline``: the makepath Austin workflow's way. ``map_blocks`` over chunks of the
  lazily normalised pair; inside a chunk, 256 x 256 chips one at a time (batch of one,
  one forward at a time across dask's threads, each forward using all of torch's
  threads), no overlap, fp32; dask's threaded scheduler; written with rioxarray.
- ``predict_scene``: ``load_pair`` -> ``predict_scene`` (defaults: one global grid of
  448-640 pixel tiles, the size that predicts fewest pixels for the scene, overlapping by
  an eighth and blended; 0.5 Mpx batches; bf16 on CPUs that have it) -> ``write_raster``
  (a COG).
- ``predict_scene_fp32``: the same in fp32, to separate the effect of precision.

Seam error: the largest difference, on pixels within 2 of a chunk border, from the whole
scene predicted as one chunk (``predict_scene(..., chunk=scene size)``: the same tile
grid, no chunk borders) in the method's own precision (bf16 on CPUs that have it for
``predict_scene``, fp32 for the others). The same figure away from borders is reported
beside it, and each output's largest difference from the fp32 whole-scene prediction.

Change F1: each output thresholded at 0.5 against the sample world's true change mask.

Share of the compute floor: the model's FLOP per pixel (torch's FlopCounterMode on one
512-pixel pair, BatchNorm folded as predict_scene runs it) times the scene's pixels per
second, over this machine's measured peak in the precision the method used (the best of a
few 4096 x 4096 matrix products, in its own fresh process, with torch's default threads).
Tiles that overlap are predicted twice, so this share counts the overlap as lost work.

    python benchmarks/scene_speed.py [--sizes 2048,8192] [--device cuda] [--model PATH]
        [--repeats 3] [--append]

With ``--repeats``, each method runs that many times, each in a fresh process, the
methods taking turns (round by round), and the median of its seconds and of its peak RSS
is kept (``seconds_each`` lists them).

Writes benchmarks/results/scene_speed.json (scene_speed_cuda.json with ``--device cuda``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "scene_speed.json"
CHUNK = 1024
CHIP = 256
METHODS = ("baseline", "predict_scene", "predict_scene_fp32")


def baseline(before: str, after: str, model_path: str, out: str, device: str) -> None:
    """The seed workflow: map_blocks over chunks, one chip at a time, no overlap."""
    import threading

    import rioxarray
    import torch
    import xarray as xr

    from cdtools.learn.detector import ChangeDetector

    detector = ChangeDetector.from_model(model_path)
    model, stats = detector.model.eval().to(device), detector.spec.stats
    one_forward = threading.Lock()  # dask's threads take turns; torch uses every core
    chunks = {"band": -1, "y": CHUNK, "x": CHUNK}
    dates = [rioxarray.open_rasterio(path, chunks=chunks) for path in (before, after)]
    mean = xr.DataArray(np.asarray(stats.mean, np.float32), dims="band")
    std = xr.DataArray(np.asarray(stats.std, np.float32), dims="band")
    pair = xr.concat([(d.astype(np.float32) - mean) / std for d in dates], dim="time")

    def predict_chunk(block: np.ndarray) -> np.ndarray:
        out = np.zeros(block.shape[2:], dtype=np.float32)
        for r in range(0, block.shape[2], CHIP):
            for c in range(0, block.shape[3], CHIP):
                chip = torch.from_numpy(
                    np.ascontiguousarray(block[:, :, r : r + CHIP, c : c + CHIP])
                ).to(device)
                with one_forward, torch.inference_mode():
                    logit = model((chip[0:1], chip[1:2]))
                    prob = torch.sigmoid(logit)[0, 0].cpu().numpy()
                out[r : r + CHIP, c : c + CHIP] = prob
        return out

    blocks = pair.data.rechunk({0: -1, 1: -1})
    prob = blocks.map_blocks(predict_chunk, drop_axis=(0, 1), dtype=np.float32)
    coded = (prob * 255).round().astype(np.uint8)
    result = xr.DataArray(coded, dims=("y", "x"), coords={"y": dates[0].y, "x": dates[0].x})
    result = result.rio.write_crs(dates[0].rio.crs).rio.write_transform(dates[0].rio.transform())
    result.rio.to_raster(out, tiled=True, compress="deflate")


def scene(before: str, after: str, model_path: str, out: str, precision: str, device: str) -> None:
    from cdtools import load_pair, predict_scene, write_raster

    pair = load_pair(before, after)
    change = predict_scene(model_path, pair, precision=precision, chunk=CHUNK, device=device)
    write_raster(change, out, overwrite=True, progress=False)


def reference(
    before: str, after: str, model_path: str, out: str, precision: str, device: str
) -> None:
    """The whole scene as one chunk (no chunk borders), in ``precision``, on predict_scene's
    tile grid (one global grid, whatever the chunking)."""
    from cdtools import load_pair, predict_scene

    pair = load_pair(before, after)
    whole = max(pair.sizes["y"], pair.sizes["x"])
    change = predict_scene(model_path, pair, precision=precision, chunk=whole, device=device)
    np.save(out, change.values)


def compute_floor(model_path: str, device: str) -> dict[str, float]:
    """FLOP per pixel of the model and this device's peak FLOP/s in fp32 and bf16."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from cdtools.scene.model import SceneModel

    handle = SceneModel.of(model_path)  # the package read once
    model, device, _ = handle.module(device, "fp32")
    channels = handle.spec.in_channels
    pair = tuple(torch.zeros(1, channels, 512, 512, device=device) for _ in range(2))
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(pair)
    figures = {"flop_per_pixel": counter.get_total_flops() / 512**2}
    n = 4096
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
        best = float("inf")
        for _ in range(6):
            start = time.perf_counter()
            a @ b
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        figures[f"peak_gflops_{name}"] = 2 * n**3 / best / 1e9
    return figures


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started (VmHWM). Not ru_maxrss, which
    on Linux keeps the high-water mark of the parent that forked this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def child(method: str, before: str, after: str, model_path: str, out: str, device: str) -> None:
    """One run in this fresh process; libraries are imported before the clock starts."""
    import distributed  # noqa: F401  (dask imports it in every compute, to look for a client)
    import rioxarray  # noqa: F401
    import torch

    import cdtools.learn.detector
    import cdtools.scene.predict  # noqa: F401

    if device.startswith("cuda"):
        torch.zeros(1, device=device)  # the CUDA context, before the clock
    if method == "floor":
        print(json.dumps(compute_floor(model_path, device)))
        return
    start = time.perf_counter()
    if method == "baseline":
        baseline(before, after, model_path, out, device)
    elif method.startswith("reference_"):
        reference(before, after, model_path, out, method.removeprefix("reference_"), device)
    else:
        precision = "fp32" if method.endswith("fp32") else "auto"
        scene(before, after, model_path, out, precision, device)
    seconds = time.perf_counter() - start
    figures = {
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
    }
    if device.startswith("cuda"):
        figures["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(figures))


def run_child(*args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"{args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def floor_share(floor: dict[str, float], pixels_per_s: float, method: str, device: str) -> float:
    """The share of the device's peak in the precision ``method`` used, at the model's FLOP
    per pixel."""
    from cdtools.learn.precision import resolve_precision

    precision = "fp32" if method != "predict_scene" else resolve_precision("auto", device)
    peak = floor.get(f"peak_gflops_{precision}", floor["peak_gflops_fp32"]) * 1e9
    return round(pixels_per_s * floor["flop_per_pixel"] / peak, 3)


def change_f1(output: Path, truth_path: Path) -> float:
    """F1 of change of the output thresholded at 0.5, against the sample's true mask."""
    import rasterio

    with rasterio.open(output) as src:
        predicted = src.read(1) >= 128
    with rasterio.open(truth_path) as src:
        truth = src.read(1) == 1
    hits = np.count_nonzero(predicted & truth)
    return round(float(2 * hits / max(np.count_nonzero(predicted) + np.count_nonzero(truth), 1)), 4)


def machine(device: str) -> str:
    cpus = f"{platform.machine()}, {os.cpu_count()} cpus"
    if not device.startswith("cuda"):
        return f"{cpus}, no GPU"
    import torch

    return f"{cpus}, {torch.cuda.get_device_name(device)}"


def seam_errors(output: Path, reference: np.ndarray) -> dict[str, float]:
    import rasterio

    with rasterio.open(output) as src:
        values = src.read(1).astype(np.int16)
    diff = np.abs(values - reference.astype(np.int16))
    near = np.zeros(diff.shape, dtype=bool)
    for border in range(CHUNK, diff.shape[0], CHUNK):
        near[border - 2 : border + 2] = True
    for border in range(CHUNK, diff.shape[1], CHUNK):
        near[:, border - 2 : border + 2] = True
    return {
        "max_error": round(float(diff.max()) / 255, 4),
        "seam_error": round(float(diff[near].max()) / 255, 4),
        "seam_error_in_255ths": int(diff[near].max()),
        "max_error_away_from_borders": round(float(diff[~near].max()) / 255, 4),
        "mean_abs_error": round(float(diff.mean()) / 255, 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2048,8192")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "cdtools-bench"
    )
    parser.add_argument("--device", default="cpu", help='"cpu" or "cuda"')
    parser.add_argument("--model", type=Path, help="a saved sample detector (default: train it)")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--append", action="store_true", help="keep the other sizes already in --out"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each method (the median is kept)"
    )
    args = parser.parse_args()
    out_path = args.out or (
        RESULTS.with_name("scene_speed_cuda.json") if args.device != "cpu" else RESULTS
    )

    from cdtools.samples import RECIPE, sample_detector
    from cdtools.synthetic import make_scene_pair

    model_path = args.model or args.workdir / "sample-model"
    if not (model_path / "model.json").exists():
        sample_detector().save(model_path, overwrite=True)
    floor = run_child("floor", "", "", str(model_path), "", args.device)
    print(f"compute floor: {floor}", flush=True)
    sizes = []
    if args.append and out_path.exists():
        sizes = json.loads(out_path.read_text())["sizes"]
    for size in (int(s) for s in args.sizes.split(",")):
        sizes = [entry for entry in sizes if entry["size"] != size]
        world = make_scene_pair(args.workdir / f"world_{size}", size=size, seed=0)
        files = (str(world.before), str(world.after), str(model_path))
        refs, ref_seconds = {}, {}
        for precision in ("fp32", "auto"):
            ref_path = args.workdir / f"reference_{precision}_{size}.npy"
            figures = run_child(f"reference_{precision}", *files, str(ref_path), args.device)
            refs[precision], ref_seconds[precision] = np.load(ref_path), figures["seconds"]
        methods = args.methods.split(",")
        outs = {method: args.workdir / f"{method}_{size}.tif" for method in methods}
        # round by round, so that a slow spell of a shared machine slows every method
        rounds = [
            {m: run_child(m, *files, str(outs[m]), args.device) for m in methods}
            for _ in range(args.repeats)
        ]
        runs = {}
        for method in methods:
            out, each = outs[method], [turn[method] for turn in rounds]
            figures = {key: float(np.median([f[key] for f in each])) for key in each[0]}
            runs[method] = {
                "seconds": round(figures["seconds"], 1),
                **(
                    {"seconds_each": [round(f["seconds"], 1) for f in each]}
                    if len(each) > 1
                    else {}
                ),
                "mpx_per_s": round(size * size / figures["seconds"] / 1e6, 3),
                "peak_rss_mb": round(figures["peak_rss_mb"]),
                **(
                    {"peak_gpu_mb": round(figures["peak_gpu_mb"])}
                    if "peak_gpu_mb" in figures
                    else {}
                ),
                "change_f1": change_f1(out, world.change_mask),
                "share_of_compute_floor": floor_share(
                    floor, size**2 / figures["seconds"], method, args.device
                ),
                # against the whole scene in the method's own precision
                **seam_errors(out, refs["auto" if method == "predict_scene" else "fp32"]),
                "max_error_vs_fp32_whole_scene": seam_errors(out, refs["fp32"])["max_error"],
            }
            print(f"{size} {method}: {runs[method]}", flush=True)
        sizes.append(
            {
                "size": size,
                "megapixels": round(size * size / 1e6, 1),
                "compute_floor": {k: round(v, 1) for k, v in floor.items()},
                "reference_seconds": {k: round(v, 1) for k, v in ref_seconds.items()},
                "runs": runs,
            }
        )
    summary = {}
    for entry in sizes:
        runs = entry["runs"]
        if "baseline" in runs and "predict_scene" in runs:
            speedup = runs["predict_scene"]["mpx_per_s"] / runs["baseline"]["mpx_per_s"]
            summary[f"speedup_{entry['size']}"] = round(speedup, 2)
            base, ours = (runs[m].get("seconds_each", []) for m in ("baseline", "predict_scene"))
            if each := [round(b / o, 2) for b, o in zip(base, ours, strict=True)]:
                summary[f"speedup_{entry['size']}_each_round"] = each
    by_size = {e["size"]: e["runs"] for e in sizes}
    if 2048 in by_size and 8192 in by_size and "predict_scene" in by_size[2048]:
        small, large = by_size[2048]["predict_scene"], by_size[8192]["predict_scene"]
        ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
        summary["predict_scene_rss_8192_over_2048"] = round(ratio, 2)
    result = {
        "benchmark": "scene_speed",
        "model": f"sample detector: {RECIPE['arch']} {RECIPE['backbone']}",
        "chunk": CHUNK,
        "baseline": f"map_blocks, {CHIP}px chips one at a time, no overlap, fp32, threads",
        "predict_scene": "defaults: tile size chosen per scene, overlap tile/8, precision auto",
        "reference": "predict_scene on the whole scene as one chunk, same tiles, in the "
        "method's precision (auto for predict_scene, fp32 for the others)",
        "device": args.device,
        "machine": machine(args.device),
        "targets": "speedup >= 2, seam error <= 1/255, RSS 8192 <= 1.2 x RSS 2048",
        "summary": summary,
        "sizes": sizes,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary))
    print(f"wrote {out_path}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:8])
    else:
        main()
