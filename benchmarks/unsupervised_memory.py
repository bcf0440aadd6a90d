"""Change without labels at scale: peak memory and speed of detect_change by scene size.

For each size, a pair of that size is written to disk (the 1024-pixel sample world of seed
7 tiled, 3-band uint8, 512-pixel GeoTIFF blocks); then, for each method, one fresh process
goes GeoTIFF -> ``load_pair`` -> ``detect_change`` -> ``write_raster`` (a COG) and reports
its wall time and peak RSS. The issue's target: peak RSS at 8192 at most 1.2 x at 2048
(memory flat in scene size: the statistics are fitted on a fixed-size sample). Each figure
is the median of ``--repeats`` runs: glibc's heap makes peak RSS vary by tens of MB.

    python benchmarks/unsupervised_memory.py [--sizes 2048,8192] [--methods cva,irmad] [--repeats 3]

Writes benchmarks/results/unsupervised_memory.json.
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
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "unsupervised_memory.json"


def child(method: str, before: str, after: str, out: str) -> None:
    """One run in this fresh process; libraries are imported before the clock starts."""
    from scene_speed import peak_rss_mb  # beside this script

    import cdtools
    import cdtools.io.cog
    import cdtools.unsupervised.detect

    start = time.perf_counter()
    change = cdtools.detect_change(cdtools.load_pair(before, after), method=method)
    cdtools.write_raster(change, out, overwrite=True, progress=False)
    seconds = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}))


def tiled_pair(work: Path, size: int) -> tuple[Path, Path]:
    import rasterio

    import cdtools
    from cdtools.io.raster import write_geotiff

    world = cdtools.make_scene_pair(work / "seed7", size=1024, seed=7)
    reps = size // 1024
    paths = []
    for name, source in (("before", world.before), ("after", world.after)):
        with rasterio.open(source) as src:
            image, transform, crs = src.read(), src.transform, src.crs
        path = work / f"{name}_{size}.tif"
        write_geotiff(path, np.tile(image, (1, reps, reps)), transform=transform, crs=crs,
                      tiled=True, blockxsize=512, blockysize=512)  # fmt: skip
        paths.append(path)
    return paths[0], paths[1]


def _run(method: str, before: Path, after: Path, out: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", method, str(before), str(after), str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{method} on {before.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2048,8192")
    parser.add_argument("--methods", default="cva,irmad,pca_kmeans")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; median kept")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    runs: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="cdtools-unsupervised-memory-") as tmp:
        work = Path(tmp)
        for size in sizes:
            before, after = tiled_pair(work, size)
            for method in args.methods.split(","):
                repeats = [
                    _run(method, before, after, work / f"{method}_{size}.tif")
                    for _ in range(args.repeats)
                ]
                peaks = [r["peak_rss_mb"] for r in repeats]
                seconds = float(np.median([r["seconds"] for r in repeats]))
                runs.setdefault(method, {})[str(size)] = {
                    "seconds": round(seconds, 1),
                    "mpx_per_s": round(size * size / 1e6 / seconds, 2),
                    "peak_rss_mb": round(float(np.median(peaks))),
                    "peak_rss_mb_each": [round(p) for p in peaks],
                }
                print(f"{size} {method}: {runs[method][str(size)]}", flush=True)
    small, large = str(min(sizes)), str(max(sizes))
    ratios = {
        m: round(r[large]["peak_rss_mb"] / r[small]["peak_rss_mb"], 2) for m, r in runs.items()
    }
    result = {
        "benchmark": "unsupervised_memory",
        "protocol": "fresh process per run: load_pair -> detect_change -> write_raster (COG), "
        "3-band uint8 GeoTIFFs (sample world seed 7 tiled), default chunks and sample; "
        f"median of {args.repeats} runs (peak RSS varies by tens of MB from run to run)",
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, no GPU",
        "runs": runs,
        f"peak_rss_{large}_over_{small}": ratios,
        "target": "peak RSS 8192 <= 1.2 x peak RSS 2048",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(ratios))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
    else:
        main()
