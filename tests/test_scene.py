"""predict_scene: chunk-border invariance, nodata, a real LocalCluster, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from cdtools.errors import GridError, ParameterError
from cdtools.io.pair import array_pair, load_pair
from cdtools.io.raster import write_geotiff
from cdtools.samples import sample_detector
from cdtools.scene.model import LOADS, SceneModel
from cdtools.scene.predict import NODATA, encode_probability, predict_scene
from cdtools.synthetic import make_scene_pair

FP32 = {"precision": "fp32", "tile": 128, "overlap": 32}


@pytest.fixture(scope="module")
def detector():
    return sample_detector()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    return make_scene_pair(tmp_path_factory.mktemp("scene") / "world", size=512, seed=21)


def test_chunk_borders_leave_no_trace(detector, world) -> None:
    pair = load_pair(world.before, world.after).isel(y=slice(0, 448), x=slice(0, 416))
    outputs = [
        predict_scene(detector, pair, chunk=chunk, **FP32).values.astype(int)
        for chunk in (128, 160, 448)
    ]
    assert outputs[0].std() > 5  # a map with structure, so the comparison means something
    for other in outputs[1:]:
        assert np.abs(other - outputs[0]).max() <= 1  # within 1/255
    whole = detector.predict(pair.values[0], pair.values[1], **FP32).values
    assert np.abs(outputs[0] / 255 - whole).max() <= 1 / 255 + 1e-6


def test_detector_predict_is_predict_scene_decoded(detector, world, tmp_path: Path) -> None:
    """One engine: the same pair and options give predict_scene's map, as float32."""
    pair = load_pair(world.before, world.after, grid="union").isel(y=slice(32, 480))
    before, after = pair.values  # with no data where the union leaves it
    before[:, 100:140, 200:260] = np.nan  # and where only the before date has none
    coded = predict_scene(detector, array_pair(before, after), **FP32).values
    assert (coded == NODATA).sum() == 40 * 60 and coded.std() > 5
    change = detector.predict(before, after, **FP32)
    assert change.dtype == np.float32 and change.shape == coded.shape
    np.testing.assert_array_equal(encode_probability(change.values), coded)  # the same map
    np.testing.assert_array_equal(np.isnan(change.values), coded == NODATA)
    error = np.abs(change.values - np.where(coded == NODATA, np.nan, coded / 255))
    assert np.nanmax(error[coded < 254]) <= 0.5 / 255 + 1e-6  # rounded to the nearest 1/255
    assert np.nanmax(error) <= 1 / 255 + 1e-6  # 254 holds all of [253.5, 255] / 255
    # from files: the same map on the pair's grid, and the same file as the CLI's
    out = tmp_path / "change.tif"
    change = detector.predict(world.before, world.after, out_path=out, **FP32)
    coded = predict_scene(detector, load_pair(world.before, world.after), **FP32)
    np.testing.assert_array_equal(encode_probability(change.values), coded.values)
    assert change.rio.crs == coded.rio.crs and change.rio.transform() == coded.rio.transform()
    with rasterio.open(out) as src:
        assert src.nodata == NODATA and src.dtypes[0] == "uint8"
        assert src.transform == coded.rio.transform() and src.crs == coded.rio.crs
        np.testing.assert_array_equal(src.read(1), coded.values)


def test_the_result_is_georeferenced_uint8_on_the_pair_grid(detector, world) -> None:
    pair = load_pair(world.before, world.after)
    change = predict_scene(detector, pair, chunk=256, **FP32)
    assert change.dims == ("y", "x") and change.shape == (512, 512) and change.dtype == np.uint8
    assert change.chunks == ((256, 256), (256, 256))  # lazy
    assert change.rio.crs == pair.rio.crs and change.rio.transform() == pair.rio.transform()
    assert change.rio.nodata == NODATA
    truth = rasterio.open(world.change_mask).read(1) == 1
    prob = change.values / 255
    hit = (prob > detector.threshold) & truth
    f1 = 2 * hit.sum() / ((prob > detector.threshold).sum() + truth.sum())
    assert f1 > 0.4  # the sample model finds the sample world's changes


def test_each_process_builds_the_model_once(detector, world) -> None:
    handle = SceneModel.of(detector)
    pair = load_pair(world.before, world.after)
    first = LOADS[handle.token]
    predict_scene(handle, pair, chunk=128, precision="fp32", tile=128).compute()
    predict_scene(handle, pair, chunk=256, precision="fp32", tile=128).compute()
    assert LOADS[handle.token] - first <= 1  # 16 + 4 chunks, one model


def test_nodata_where_either_date_has_none(detector, world, tmp_path: Path) -> None:
    crops = {}
    for name, path, (row, col) in (
        ("before", world.before, (0, 0)),
        ("after", world.after, (64, 96)),
    ):
        with rasterio.open(path) as src:
            window = Window(col, row, 384, 384)
            crops[name] = write_geotiff(
                tmp_path / f"{name}.tif", src.read(window=window),
                transform=src.window_transform(window), crs=src.crs,
            )  # fmt: skip
    pair = load_pair(crops["before"], crops["after"], grid="union")
    assert pair.shape[2:] == (448, 480)
    change = predict_scene(detector, pair, chunk=224, **FP32).values
    both = np.isfinite(pair.values).all(axis=(0, 1))
    assert (change[~both] == NODATA).all()
    assert (change[both] < NODATA).all()
    assert both[64:384, 96:384].all() and not both[:64].any()


def test_a_local_cluster_gives_the_threaded_result(detector, world) -> None:
    distributed = pytest.importorskip("distributed")
    pair = load_pair(world.before, world.after)
    handle = SceneModel.of(detector)
    threaded = predict_scene(handle, pair, chunk=128, **FP32).values
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        clustered = predict_scene(handle, pair, chunk=128, **FP32).values
        loads = client.run(
            lambda: __import__("cdtools.scene.model").scene.model.LOADS[handle.token]
        )
    np.testing.assert_array_equal(clustered, threaded)
    assert len(loads) == 2 and all(n == 1 for n in loads.values())  # once per worker


def test_a_model_with_other_bands_is_refused(detector, tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 255, (4, 96, 96), dtype=np.uint8)
    path = write_geotiff(tmp_path / "four.tif", data, crs="EPSG:32614")
    with pytest.raises(GridError, match="4 bands but the model takes 3"):
        predict_scene(detector, load_pair(path, path))


def test_a_common_area_smaller_than_a_tile_is_refused(detector, world, tmp_path: Path) -> None:
    pair = load_pair(world.before, world.after).isel(y=slice(0, 20), x=slice(0, 300))
    with pytest.raises(GridError, match="20 x 300 pixels, too small for one"):
        predict_scene(detector, pair)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"precision": "fp8"}, "precision must be"),
        ({"tile": 100}, "multiple of 32"),
        ({"tile": 128, "chunk": 64}, "at least the tile size"),
        ({"tile": 128, "overlap": 100}, "overlap must be between"),
    ],
)
def test_bad_options_say_what_to_pass(detector, world, options, message) -> None:
    pair = load_pair(world.before, world.after)
    with pytest.raises(ParameterError, match=message):
        predict_scene(detector, pair, **options).compute()


def test_a_model_must_be_a_detector_or_a_package(world) -> None:
    with pytest.raises(ParameterError, match="ChangeDetector or a model package path"):
        predict_scene(object(), load_pair(world.before, world.after))


def test_two_scenes_computed_together_stay_apart(detector, world) -> None:
    import dask

    pair = load_pair(world.before, world.after)
    flipped = pair.isel(x=slice(None, None, -1))
    one, two = dask.compute(
        predict_scene(detector, pair, **FP32).data, predict_scene(detector, flipped, **FP32).data
    )
    alone = predict_scene(detector, flipped, **FP32).values
    np.testing.assert_array_equal(two, alone)
    assert (one != two).any()


def test_each_chunk_reads_its_halo_again_so_no_row_of_chunks_waits(
    detector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dask.callbacks import Callback
    from rasterio.transform import from_origin

    rng = np.random.default_rng(3)
    for name in ("before", "after"):
        image = rng.integers(0, 255, (3, 1024, 1024)).astype(np.uint8)
        write_geotiff(
            tmp_path / f"{name}.tif", image, transform=from_origin(5e5, 4e6, 1, 1), crs="EPSG:32633"
        )
    pair = load_pair(tmp_path / "before.tif", tmp_path / "after.tif", chunks=64)  # 16 x 16
    # the reads and the stitching are under test, not the model: a cheap stand-in
    monkeypatch.setattr(
        SceneModel, "predict", lambda self, b, a, **_: np.full((len(b), *b.shape[2:]), 0.5)
    )
    most = 0

    class CountInputChunks(Callback):
        def _posttask(self, key, result, dsk, state, worker_id) -> None:
            nonlocal most
            held = [v for v in state["cache"].values() if isinstance(v, np.ndarray)]
            most = max(most, sum(v.shape[-3:] == (3, 64, 64) and v.base is None for v in held))

    change = predict_scene(detector, pair, chunk=64, tile=32, overlap=8, precision="fp32")
    with CountInputChunks():
        values = change.compute(scheduler="threads")
    assert (values == 128).all()  # 0.5 everywhere, each pixel's weights summed once
    # a dask overlap held 26 input chunks at once here (a row and more, waiting for the
    # row above); with the halo read again, 1
    assert most <= 4


def test_the_halo_is_a_dask_overlap_below_and_to_the_right() -> None:
    import dask.array as da

    from cdtools.scene.halo import with_halo

    values = np.random.default_rng(4).random((2, 3, 300, 350), dtype=np.float32)
    for chunks in ((2, 3, 300, 350), (1, 3, (100, 120, 80), (200, 150))):
        data = da.from_array(values, chunks=chunks).rechunk((2, 3, (140, 160), (120, 230)))
        expected = da.overlap.overlap(
            data, depth={0: 0, 1: 0, 2: (0, 64), 3: (0, 64)}, boundary="none"
        )
        halo = with_halo(data, 64)
        assert halo.chunks == expected.chunks
        np.testing.assert_array_equal(halo.compute(), expected.compute())
