"""detect_change: unsupervised change maps (cva, irmad, pca_kmeans) on planted change."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from conftest import CRS, ORIGIN, PIXEL
from scipy.ndimage import gaussian_filter

import cdtools
from cdtools.errors import CdtoolsWarning, GridError, ParameterError
from cdtools.io.raster import write_geotiff
from cdtools.unsupervised.threshold import kittler_illingworth, otsu

SIZE = 128
SQUARE = (slice(40, 72), slice(60, 100))  # the planted change: 32 x 40 pixels, 7.8 %
GAIN, OFFSET = np.array([1.3, 0.8, 1.1, 0.6]), np.array([20.0, -5.0, 40.0, 10.0])
METHODS = ("cva", "irmad", "pca_kmeans")
F1_BOUND = {"cva": 0.9, "irmad": 0.9, "pca_kmeans": 0.85}


def scene(seed: int = 0, *, bands: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(before, after, truth): textured bands; after = before x gain + offset + noise
    (a linear radiometric difference, not change), and new, unrelated ground in SQUARE."""
    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.normal(0, 1, (bands + 1, SIZE, SIZE)), (0, 2, 2))
    before = 100 + 400 * (field[:bands] + 0.5 * field[bands:])  # correlated bands
    after = before * GAIN[:bands, None, None] + OFFSET[:bands, None, None]
    after += rng.normal(0, 2, after.shape)
    new = rng.permutation(np.arange(bands))  # the changed ground swaps its spectra
    after[:, SQUARE[0], SQUARE[1]] = (
        before[new][:, SQUARE[0], SQUARE[1]][:, ::-1] * GAIN[:bands, None, None] + 150
    )
    truth = np.zeros((SIZE, SIZE), dtype=np.uint8)
    truth[SQUARE] = 1
    return before, after, truth


def pair_files(folder: Path, before: np.ndarray, after: np.ndarray, **kw) -> tuple[Path, Path]:
    from rasterio.transform import from_origin

    folder.mkdir(parents=True, exist_ok=True)
    transform = from_origin(*ORIGIN, PIXEL, PIXEL)
    paths = folder / "before.tif", folder / "after.tif"
    for path, image in zip(paths, (before, after), strict=True):
        write_geotiff(path, image, transform=transform, crs=CRS, **kw)
    return paths


def load(folder: Path, before: np.ndarray, after: np.ndarray, chunk: int = 64, **kw):
    paths = pair_files(folder, before.astype(np.float32), after.astype(np.float32), **kw)
    return cdtools.load_pair(*paths, chunks={"band": -1, "y": chunk, "x": chunk})


def f1(change: xr.DataArray, truth: np.ndarray) -> float:
    values = change.values
    predicted = (values / 255 > change.attrs["threshold"]) & (values != 255)
    tp = (predicted & (truth == 1)).sum()
    precision, recall = tp / max(predicted.sum(), 1), tp / max(truth.sum(), 1)
    return float(2 * precision * recall / max(precision + recall, 1e-12))


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory):
    before, after, truth = scene()
    return load(tmp_path_factory.mktemp("planted"), before, after), truth


@pytest.mark.parametrize("method", METHODS)
def test_each_method_finds_the_planted_change(planted, method: str) -> None:
    pair, truth = planted
    change = cdtools.detect_change(pair, method=method)
    assert f1(change, truth) > F1_BOUND[method], change.attrs


def test_irmad_is_blind_to_a_linear_radiometric_difference(planted, tmp_path: Path) -> None:
    pair, _ = planted
    before, after = pair.values
    other = load(tmp_path, before, after * np.array([0.5, 2.0, 1.5, 0.9])[:, None, None] - 30)
    first = cdtools.detect_change(pair, method="irmad")
    second = cdtools.detect_change(other, method="irmad")
    np.testing.assert_allclose(
        first.attrs["canonical_correlations"], second.attrs["canonical_correlations"], atol=1e-4
    )
    differ = np.abs(first.values.astype(int) - second.values.astype(int))
    assert differ.max() <= 1 and (differ > 0).mean() < 0.01


def test_the_map_is_encoded_as_predict_scene_encodes_it(tmp_path: Path) -> None:
    before, after, _ = scene()
    before[:, :10, :] = -9999  # the before date has no data in its first 10 rows
    pair = load(tmp_path, before, after, nodata=-9999)
    change = cdtools.detect_change(pair, method="cva")
    assert change.dims == ("y", "x") and change.chunks is not None
    assert change.dtype == np.uint8 and change.rio.nodata == 255
    assert change.rio.crs == pair.rio.crs and change.rio.transform() == pair.rio.transform()
    values = change.values
    assert (values[:10] == 255).all() and (values[10:] < 255).all()
    assert change.attrs["threshold"] == 0.5 and change.attrs["threshold_method"] == "otsu"
    assert change.attrs["threshold_statistic"] == change.attrs["score_reference"] > 0


@pytest.mark.parametrize("method", METHODS)
def test_the_lazy_map_equals_a_one_chunk_computation(planted, tmp_path: Path, method) -> None:
    pair, _ = planted
    whole = pair.chunk({"y": -1, "x": -1})
    chunked = cdtools.detect_change(pair, method=method)
    assert len(chunked.chunks[0]) == SIZE // 64
    np.testing.assert_array_equal(
        chunked.values, cdtools.detect_change(whole, method=method).values
    )


def test_a_local_cluster_gives_the_threaded_maps(tmp_path: Path) -> None:
    """On a dask cluster of processes, the sample is brought back from the workers (it was
    stored into their copies of it: every map came out "no change") and each pca_kmeans
    chunk's task, carrying its own reads, travels to them."""
    distributed = pytest.importorskip("distributed")
    before, after, _ = scene()
    pair = load(tmp_path, before, after, chunk=32)
    threaded = {m: cdtools.detect_change(pair, method=m).values for m in METHODS}
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster),
    ):
        for method in METHODS:
            clustered = cdtools.detect_change(pair, method=method)
            assert clustered.attrs["threshold_method"] != "none (no change found)"
            np.testing.assert_array_equal(clustered.values, threaded[method])


def test_pca_kmeans_with_a_sliver_of_a_last_chunk(tmp_path: Path) -> None:
    """A last chunk thinner than the halo (128 = 127 + 1) is merged into its neighbour:
    the map is the one-chunk map (dask's overlap refused such chunks before)."""
    before, after, _ = scene()
    pair = load(tmp_path, before, after, chunk=127)
    assert pair.chunks[2] == (127, 1)
    np.testing.assert_array_equal(
        cdtools.detect_change(pair, method="pca_kmeans").values,
        cdtools.detect_change(pair.chunk({"y": -1, "x": -1}), method="pca_kmeans").values,
    )


def test_pca_kmeans_holds_no_chunk_of_the_pair_or_its_difference_between_tasks(
    tmp_path: Path,
) -> None:
    """Memory flat in scene size: between tasks, dask holds only the edges of each chunk's
    difference image (its halo for the neighbours) and the scores. Rows of difference
    chunks were held for the halo before (2 rows of these 8 x 8 chunks; left to dask's
    order, 50 of the 64), and one date's chunks for the other's."""
    from dask.callbacks import Callback

    before, after, _ = scene()
    pair = load(tmp_path, before, after, chunk=16)  # 8 x 8 chunks
    change = cdtools.detect_change(pair, method="pca_kmeans")
    held: list[tuple[int, ...]] = []

    class LargeValues(Callback):
        def _posttask(self, key, result, dsk, state, worker_id) -> None:
            for value in state["cache"].values():
                shape = getattr(value, "shape", ())
                if getattr(value, "dtype", None) != np.uint8 and shape[-2:] == (16, 16):
                    held.append(shape)  # a date's chunk, both dates', or a difference

    with LargeValues():
        values = change.compute(scheduler="threads").values
    assert held == []
    whole = cdtools.detect_change(pair.chunk({"y": -1, "x": -1}), method="pca_kmeans")
    np.testing.assert_array_equal(values, whole.values)


def test_thresholds_split_two_populations() -> None:
    rng = np.random.default_rng(0)
    values = np.r_[rng.normal(0, 1, 9000), rng.normal(10, 2, 1000)]
    assert 2 < otsu(values) < 8 and 2 < kittler_illingworth(values) < 8


def test_threshold_options(planted) -> None:
    pair, truth = planted
    chi2 = cdtools.detect_change(pair, method="irmad", threshold="chi2")
    assert chi2.attrs["threshold_statistic"] == pytest.approx(13.277, abs=1e-3)  # 99 %, 4 dof
    auto = cdtools.detect_change(pair, method="cva")
    given = cdtools.detect_change(pair, method="cva", threshold=0.9)
    assert given.attrs["threshold"] == 0.9 and given.attrs["threshold_method"] == "given"
    np.testing.assert_array_equal(given.values, auto.values)  # the same map, a higher cut
    assert given.attrs["threshold_statistic"] == pytest.approx(9 * auto.attrs["score_reference"])
    assert f1(cdtools.detect_change(pair, method="irmad", threshold="kittler_illingworth"), truth)
    with pytest.raises(ParameterError, match="chi2"):
        cdtools.detect_change(pair, method="cva", threshold="chi2")
    with pytest.raises(ParameterError, match="method"):
        cdtools.detect_change(pair, method="mad")
    with pytest.raises(ParameterError, match=r"\[0, 1\)"):
        cdtools.detect_change(pair, threshold=1.5)
    with pytest.raises(ParameterError, match="time=2"):
        cdtools.detect_change(pair.isel(time=0))


def test_all_nodata_gives_an_empty_map_and_a_warning(tmp_path: Path) -> None:
    before, after, _ = scene()
    before[:] = -9999
    pair = load(tmp_path, before, after, nodata=-9999)
    with pytest.warns(CdtoolsWarning, match="no pixel has data on both dates"):
        change = cdtools.detect_change(pair)
    assert (change.values == 255).all()


@pytest.mark.parametrize("method", METHODS)
def test_identical_dates_give_a_zero_map_and_a_warning(planted, method: str) -> None:
    pair, _ = planted
    same = xr.concat([pair.isel(time=0), pair.isel(time=0)], dim="time")
    with pytest.warns(CdtoolsWarning, match="do not differ"):
        change = cdtools.detect_change(same, method=method)
    assert (change.values == 0).all() and change.rio.crs == pair.rio.crs


def test_band_counts_that_differ_are_refused(tmp_path: Path) -> None:
    before, after, _ = scene()
    paths = pair_files(tmp_path, before.astype(np.float32), after[:3].astype(np.float32))
    with pytest.raises(GridError, match="band counts"):
        cdtools.load_pair(*paths)
    three = cdtools.load_pair(paths[1], paths[1])
    four = cdtools.load_pair(paths[0], paths[0])
    stacked = xr.concat([four.isel(time=0), three.isel(time=1)], dim="time", join="outer")
    with pytest.raises(GridError, match=r"no data in band\(s\) \[3\].*same bands"):
        cdtools.detect_change(stacked)


@pytest.mark.parametrize("dtype", ["uint16", "int16"])
def test_integer_inputs_do_not_overflow(planted, dtype: str) -> None:
    pair, truth = planted
    values = pair.values.astype(np.float64)
    low = 30000.0 if dtype == "uint16" else -32000.0  # near the top, or below zero
    scaled = np.round(low + (values - values.min()) / np.ptp(values) * 30000)
    as_int = pair.copy(data=scaled.astype(dtype))
    as_float = pair.copy(data=scaled)
    for method in ("cva", "irmad"):
        coded = cdtools.detect_change(as_int, method=method)
        assert f1(coded, truth) > F1_BOUND[method]
        differ = coded.values.astype(int) - cdtools.detect_change(as_float, method=method).values
        assert np.abs(differ).max() <= 1


def test_write_raster_writes_it(planted, tmp_path: Path) -> None:
    pair, _ = planted
    change = cdtools.detect_change(pair, method="irmad")
    path = cdtools.write_raster(change, tmp_path / "change.tif", progress=False)
    with rasterio.open(path) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255
        assert src.crs == pair.rio.crs and src.transform == pair.rio.transform()
        np.testing.assert_array_equal(src.read(1), change.values)
        assert float(src.tags()["threshold"]) == pytest.approx(change.attrs["threshold"])


def test_the_sample_world(tmp_path: Path) -> None:
    world = cdtools.make_scene_pair(tmp_path / "world", size=256, seed=0)
    pair = cdtools.load_pair(world.before, world.after)
    with rasterio.open(world.change_mask) as src:
        truth = src.read(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CdtoolsWarning)
        scores = {m: f1(cdtools.detect_change(pair, method=m), truth) for m in METHODS}
    assert min(scores.values()) > 0.2, scores  # sample-world pseudo-change keeps all low


# ------------------------------------------------------------------ weak labels
def test_weak_labels_keep_the_confident_pixels_and_export_takes_them(tmp_path: Path) -> None:
    before, after, truth = scene()
    pair = load(tmp_path / "pair", before, after)
    change = cdtools.detect_change(pair, method="irmad")
    labels = cdtools.weak_labels(change, tmp_path / "weak.tif", progress=False)
    coded = change.values
    with rasterio.open(labels) as src:
        values, crs, nodata = src.read(1), src.crs, src.nodata
        assert src.transform == pair.rio.transform()
    assert crs == pair.rio.crs and nodata == 255
    assert set(np.unique(values)) == {0, 1, 255}
    assert np.array_equal(values == 1, coded >= 170) and np.array_equal(values == 0, coded <= 85)
    # confident labels are nearly all right, and the uncertain band is small
    assert (truth[values == 1] == 1).mean() > 0.95 and (truth[values == 0] == 0).mean() > 0.98
    assert (values == 255).mean() < 0.2
    chips = cdtools.export_training_data(
        *pair_files(tmp_path / "pair", before, after), labels, tmp_path / "chips",
        chip_size=64, stride=64, progress=False, overwrite=True,
    )  # fmt: skip
    assert len(list((chips / "labels").glob("*.tif"))) == 4


def test_weak_labels_refuse_a_band_that_leaves_one_class(tmp_path: Path) -> None:
    before, after, _ = scene()
    change = cdtools.detect_change(load(tmp_path / "pair", before, after), method="cva")
    with pytest.raises(ParameterError, match="low < threshold < high"):
        cdtools.weak_labels(change, tmp_path / "a.tif", low=0.6, high=0.7)
    from cdtools.errors import LabelError

    with pytest.raises(LabelError, match="confident change"):
        cdtools.weak_labels(change, tmp_path / "b.tif", high=1.0)
    assert not (tmp_path / "b.tif").exists()
