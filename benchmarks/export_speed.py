"""Export speed and memory on a large sample pair.

Makes an 8192 x 8192 sample world (once, cached in --workdir), then exports it at each
stride in a fresh process and reports chips/s and that process's peak RSS. The scene is
never loaded whole, so peak RSS stays far below what the pair would take in memory.

    python benchmarks/export_speed.py [--size 8192] [--strides 256,64]

Writes benchmarks/results/export_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "export_speed.json"


def export_once(
    before: str, after: str, labels: str, out: str, chip_size: int, stride: int
) -> None:
    """Child process: one export, then print its figures as JSON."""
    from cdtools.chips.export import export_training_data

    start = time.perf_counter()
    export_training_data(
        before, after, labels, out, chip_size=chip_size, stride=stride, progress=False
    )
    seconds = time.perf_counter() - start
    chips = json.loads((Path(out) / "export.json").read_text())["counts"]["chips"]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"chips": chips, "seconds": seconds, "peak_rss_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--chip-size", type=int, default=256)
    parser.add_argument("--strides", default="256,64")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "cdtools-bench"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from cdtools.synthetic import make_scene_pair

    world_dir = args.workdir / f"world_{args.size}"
    start = time.perf_counter()
    if not (world_dir / "after.tif").exists():
        make_scene_pair(world_dir, size=args.size, seed=0)
    world_seconds = time.perf_counter() - start
    pair_mb = sum((world_dir / f).stat().st_size for f in ("before.tif", "after.tif")) / 2**20
    in_memory_mb = 2 * args.size**2 * 3 / 2**20
    runs = []
    for stride in (int(s) for s in args.strides.split(",")):
        out = args.workdir / f"chips_{stride}"
        shutil.rmtree(out, ignore_errors=True)
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(world_dir / "before.tif"),
                str(world_dir / "after.tif"),
                str(world_dir / "change_polygons.geojson"),
                str(out),
                str(args.chip_size),
                str(stride),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        disk_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        shutil.rmtree(out)
        runs.append(
            {
                "stride": stride,
                "chip_size": args.chip_size,
                "chips": figures["chips"],
                "seconds": round(figures["seconds"], 1),
                "chips_per_s": round(figures["chips"] / figures["seconds"], 1),
                "peak_rss_mb": round(figures["peak_rss_mb"]),
                "output_mb": round(disk_mb),
                "peak_rss_under_1_5_gb": figures["peak_rss_mb"] < 1536,
            }
        )
        print(
            f"stride {stride:4d}: {runs[-1]['chips']:6d} chips in {runs[-1]['seconds']:7.1f} s "
            f"= {runs[-1]['chips_per_s']:6.1f} chips/s, peak RSS {runs[-1]['peak_rss_mb']} MB"
        )
    result = {
        "benchmark": "export_speed",
        "scene": f"sample world {args.size}x{args.size}, 3 bands uint8, seed 0",
        "scene_files_mb": round(pair_mb),
        "pair_in_memory_mb": round(in_memory_mb),
        "sample_world_seconds": round(world_seconds, 1) if world_seconds > 1 else "cached",
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cpus",
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        export_once(*sys.argv[2:6], int(sys.argv[6]), int(sys.argv[7]))
    else:
        main()
