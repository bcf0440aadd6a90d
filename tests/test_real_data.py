"""Optional checks on real imagery in ../shared/data (skipped where that folder is absent).

Set CDTOOLS_REAL_DATA to another folder with the same layout to run them elsewhere.
Figures are saved under outputs/tests/ for a person to look at.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cdtools.chips.data import prepare_data
from cdtools.chips.export import export_training_data

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
        chip_size=256,
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

    from cdtools.io.raster import describe, write_geotiff
    from cdtools.learn.detector import ChangeDetector

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
        chip_size=64, stride=64, progress=False,
    )  # fmt: skip
    with rasterio.open(next((chips / "images_before").iterdir())) as src:
        assert src.count == 6 and src.crs.to_epsg() == 32651 and src.res == (30.0, 30.0)
    dls = prepare_data(chips, chip_size=64, batch_size=4, val_split_pct=0.2, seed=0)
    (before, _), _ = dls.one_batch()
    assert before.shape[1] == 6 and dls.n_bands == 6
    torch.manual_seed(0)
    detector = ChangeDetector(dls, pretrained=False)
    detector.fit(1, lr=1e-3, checkpoint=False)
    table = detector.precision_recall_score()
    labelled = sum(int((m != 255).sum()) for _, m in dls.valid_ds)
    assert 0 < table.loc["support"].sum() == labelled < len(dls.valid_ds) * 64 * 64


JOPLIN = REAL_DATA / "xview2_joplin"


@pytest.mark.skipif(not JOPLIN.exists(), reason=f"xview2_joplin not found under {REAL_DATA}")
def test_joplin_tiles_in_two_crss_are_aligned_on_their_overlap() -> None:
    from cdtools.io.pair import load_pair

    pair = load_pair(
        JOPLIN / "pre", JOPLIN / "post", grid="intersection", chunks={"y": 512, "x": 512}
    )
    assert pair.rio.crs.to_epsg() == 26915 and pair.rio.resolution() == (0.6, -0.6)
    assert pair.shape == (2, 3, 1625, 1992)
    valid = np.isfinite(pair.isel(band=0).values)
    assert valid[0].mean() == 1.0 and valid[1].mean() > 0.95  # the post tiles leave small gaps


def _footprint(folder: Path, crs: str) -> Any:
    """Union of a folder's tile outlines in ``crs``, edges densified so they bend as they should."""
    import rasterio
    from rasterio.warp import transform_geom
    from shapely import segmentize
    from shapely.geometry import box, mapping, shape
    from shapely.ops import unary_union

    outlines = []
    for tile in sorted(folder.glob("*.tif")):
        with rasterio.open(tile) as src:
            outline = box(*src.bounds)
            outline = segmentize(outline, max(src.width, src.height) * src.res[0] / 64)
            outlines.append(shape(transform_geom(src.crs, crs, mapping(outline))))
    return unary_union(outlines)


@pytest.mark.skipif(not JOPLIN.exists(), reason=f"xview2_joplin not found under {REAL_DATA}")
def test_joplin_change_map_lands_on_the_intersection_of_both_dates(tmp_path: Path) -> None:
    import rasterio
    from matplotlib.figure import Figure

    from cdtools.io.cog import write_raster
    from cdtools.io.pair import load_pair
    from cdtools.samples import sample_detector
    from cdtools.scene.predict import NODATA, predict_scene

    # The sample model knows synthetic scenes only: this checks where the map lands, not
    # what it says.
    pair = load_pair(JOPLIN / "pre", JOPLIN / "post", grid="intersection")
    change = predict_scene(sample_detector(), pair)
    out = write_raster(change, tmp_path / "joplin_change.tif", progress=False)
    with rasterio.open(out) as src:
        values, transform, crs = src.read(1), src.transform, src.crs
        assert src.nodata == NODATA and src.res == pytest.approx((0.6, 0.6))
    assert crs.to_epsg() == 26915 and values.shape == (1625, 1992)
    # Where both dates have data: the pre tiles (EPSG:26915) meet the post tiles
    # (EPSG:4326), whose edges are turned by about 0.9 degrees of grid convergence.
    footprints = {date: _footprint(JOPLIN / date, "EPSG:26915") for date in ("pre", "post")}
    both = footprints["pre"].intersection(footprints["post"])
    valid = values != NODATA
    rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    left, top = transform @ (cols[0], rows[0])
    right, bottom = transform @ (cols[-1] + 1, rows[-1] + 1)
    assert (left, bottom, right, top) == pytest.approx(both.bounds, abs=2 * 0.6)  # 2 pixels
    assert valid.sum() * 0.6**2 == pytest.approx(both.area, rel=0.005)
    assert values[valid].std() > 0  # a map, not a constant

    FIGURES.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(8, 6.5))
    ax = figure.add_subplot()
    shown = np.ma.masked_equal(values[::4, ::4], NODATA) / 255
    extent = (transform.c, transform.c + transform.a * values.shape[1])
    extent += (transform.f + transform.e * values.shape[0], transform.f)
    image = ax.imshow(shown, extent=extent, cmap="magma", vmin=0, vmax=1)
    figure.colorbar(image, ax=ax, label="change probability (sample model: geometry only)")
    for (date, footprint), colour in zip(
        footprints.items(), ("tab:blue", "tab:green"), strict=True
    ):
        for k, part in enumerate(getattr(footprint, "geoms", [footprint])):
            ax.plot(*part.exterior.xy, color=colour, label=f"{date} tiles" if k == 0 else None)
    ax.plot(*both.exterior.xy, color="tab:cyan", linestyle="--", label="both dates")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.set(title="xView2 Joplin: change map footprint (EPSG:26915)", xlabel="x (m)", ylabel="y (m)")
    ax.legend(loc="lower right")
    figure.savefig(FIGURES / "xview2_joplin_change_footprint.png", dpi=80)


NAIP = REAL_DATA / "naip_timeseries"
PUCALLPA = REAL_DATA / "landsat_pucallpa"


@pytest.mark.skipif(
    not (NAIP.exists() and PUCALLPA.exists()),
    reason=f"naip_timeseries or landsat_pucallpa not found under {REAL_DATA}",
)
def test_naip_and_pucallpa_series_load_in_date_order() -> None:
    from cdtools.io.series import load_series

    naip = load_series(NAIP)  # dates from names like m_4709963_se_14_1_20090818.tif
    days = naip["time"].values.astype("datetime64[D]")
    assert naip.sizes["time"] == 10 and (np.diff(days) > np.timedelta64(0, "D")).all()
    assert str(days[0]) == "2009-08-18" and str(days[-1]) == "2020-08-31"
    assert naip.rio.crs.to_epsg() == 26914 and naip.rio.resolution() == (5.0, -5.0)
    assert naip.shape == (10, 4, 724, 934)  # the first (2009) date's grid
    # The later dates are one row shorter and 1-3 m off: warped onto 2009's grid, they
    # leave at most a pixel's edge empty.
    valid = np.isfinite(naip.isel(band=0).values)
    assert valid[0].all() and (valid.mean(axis=(1, 2)) > 0.99).all()

    pucallpa = load_series(PUCALLPA)  # 1985.tif ... 2020.tif
    years = pucallpa["time"].values.astype("datetime64[Y]").astype(int) + 1970
    assert list(years) == [1985, 1990, 1995, 2000, 2005, 2010, 2015, 2020]
    assert pucallpa.rio.crs.to_epsg() == 4326 and pucallpa.shape == (8, 4, 377, 697)
