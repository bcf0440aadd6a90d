"""Optional checks on real imagery in ../shared/data (skipped where that folder is absent).

Set CDTOOLS_REAL_DATA to another folder with the same layout to run them elsewhere.
Figures are saved under outputs/tests/ for a person to look at.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cdtools.data import prepare_data
from cdtools.export import export_training_data

REAL_DATA = Path(os.environ.get("CDTOOLS_REAL_DATA", Path(__file__).parents[2] / "shared" / "data"))
SZTAKI = REAL_DATA / "sztaki_airchange" / "Szada" / "1"
FIGURES = Path(__file__).parents[1] / "outputs" / "tests"

pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(not SZTAKI.exists(), reason=f"real data not found at {REAL_DATA}"),
]


def test_sztaki_pair_exports_and_loads(tmp_path: Path) -> None:
    out = export_training_data(
        SZTAKI / "im1.png",
        SZTAKI / "im2.png",
        SZTAKI / "gt.png",
        tmp_path / "szada1",
        tile_size=256,
        stride=128,
        image_format="png",
        progress=False,
    )
    summary = json.loads((out / "export.json").read_text())
    # 640 x 952 at tile 256, stride 128: 4 rows (last padded) x 7 columns (last padded).
    assert summary["counts"]["chips"] == 4 * 7
    assert summary["crs"] is None and summary["label_source"]["convention"] == "0/255"
    dls = prepare_data(out, chip_size=224, batch_size=4, val_split_pct=0.2, seed=0)
    (before, _), mask = dls.one_batch()
    assert before.shape == (4, 3, 224, 224) and mask.shape == (4, 224, 224)
    changed = sum(float((dls.valid_ds[i][1] == 1).float().mean()) for i in range(len(dls.valid_ds)))
    assert 0 < changed / len(dls.valid_ds) < 0.5  # Szada/1 has some, not mostly, change
    FIGURES.mkdir(parents=True, exist_ok=True)
    dls.show_batch(rows=4).savefig(FIGURES / "sztaki_szada1_show_batch.png", dpi=80)
    assert np.isfinite(dls.stats.mean).all()


TAIZHOU = REAL_DATA / "landsat_taizhou_nanjing" / "Taizhou"


@pytest.mark.skipif(not TAIZHOU.exists(), reason=f"Taizhou not found under {REAL_DATA}")
def test_six_band_landsat_with_sparse_labels(tmp_path: Path) -> None:
    import rasterio
    import torch

    from cdtools.detector import ChangeDetector
    from cdtools.raster import describe, write_geotiff

    # change.bmp and unchanged.bmp mark the labelled pixels (255); all others are unknown.
    grid = describe(TAIZHOU / "2000TM")
    with rasterio.open(TAIZHOU / "change.bmp") as c, rasterio.open(TAIZHOU / "unchanged.bmp") as u:
        changed, unchanged = c.read(1) == 255, u.read(1) == 255
    labels = np.full(changed.shape, 255, dtype=np.uint8)
    labels[unchanged], labels[changed] = 0, 1
    label_file = tmp_path / "labels.tif"
    write_geotiff(label_file, labels, transform=grid.transform, crs=grid.crs)
    chips = export_training_data(
        TAIZHOU / "2000TM", TAIZHOU / "2003TM", label_file, tmp_path / "chips",
        tile_size=64, stride=64, progress=False,
    )  # fmt: skip
    with rasterio.open(next((chips / "images_before").iterdir())) as src:
        assert src.count == 6 and src.crs.to_epsg() == 32651 and src.res == (30.0, 30.0)
    dls = prepare_data(chips, chip_size=64, batch_size=4, val_split_pct=0.2, seed=0)
    (before, _), _ = dls.one_batch()
    assert before.shape[1] == 6 and dls.n_bands == 6
    torch.manual_seed(0)
    detector = ChangeDetector(dls, pretrained=False)
    detector.fit(1, 1e-3, checkpoint=False)
    table = detector.precision_recall_score()
    labelled = sum(int((m != 255).sum()) for _, m in dls.valid_ds)
    assert 0 < table.loc["support"].sum() == labelled < len(dls.valid_ds) * 64 * 64


JOPLIN = REAL_DATA / "xview2_joplin"


@pytest.mark.skipif(not JOPLIN.exists(), reason=f"xview2_joplin not found under {REAL_DATA}")
def test_joplin_tiles_in_two_crss_are_aligned_on_their_overlap() -> None:
    from cdtools.pair import load_pair

    pair = load_pair(
        JOPLIN / "pre", JOPLIN / "post", grid="intersection", chunks={"y": 512, "x": 512}
    )
    assert pair.rio.crs.to_epsg() == 26915 and pair.rio.resolution() == (0.6, -0.6)
    assert pair.shape == (2, 3, 1625, 1992)
    valid = np.isfinite(pair.isel(band=0).values)
    assert valid[0].mean() == 1.0 and valid[1].mean() > 0.95  # the post tiles leave small gaps
