"""write_raster: a valid COG with its georeferencing, and nothing half written."""

from __future__ import annotations

import os
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
import xarray as xr
from rasterio.transform import from_origin

from cdtools.errors import OutputExistsError, ParameterError
from cdtools.io.cog import WorkerDiedError, write_raster

TRANSFORM = from_origin(620000.0, 3350000.0, 0.5, 0.5)


def lazy_raster(
    height: int = 1200, width: int = 1000, *, chunk: int = 256, fail=None
) -> xr.DataArray:
    """A lazy uint8 (y, x) DataArray in UTM 14N; ``fail`` runs inside one chunk's task."""
    values = da.arange(height * width, chunks=-1).reshape(height, width).rechunk(chunk) % 251

    def block(x: np.ndarray, block_info=None) -> np.ndarray:
        if fail is not None and block_info[0]["chunk-location"] == (1, 1):
            fail()
        return x.astype(np.uint8)

    data = values.map_blocks(block, dtype=np.uint8)
    array = xr.DataArray(data, dims=("y", "x"), name="values")
    array = array.rio.write_crs("EPSG:32614").rio.write_transform(TRANSFORM)
    return array.rio.write_nodata(255)


def test_progress_is_a_bar_over_the_chunks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_raster(lazy_raster(), tmp_path / "shown.tif", progress=True)
    assert "chunks" in capsys.readouterr().err
    write_raster(lazy_raster(), tmp_path / "quiet.tif", progress=False)
    assert "chunks" not in capsys.readouterr().err


def test_writes_a_valid_cog_with_its_crs_and_transform(tmp_path: Path) -> None:
    from rio_cogeo.cogeo import cog_validate

    path = write_raster(lazy_raster(), tmp_path / "out.tif", progress=False)
    valid, errors, _ = cog_validate(path)
    assert valid, errors
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32614 and src.transform == TRANSFORM
        assert src.nodata == 255 and src.block_shapes[0] == (512, 512)
        assert src.overviews(1)[0] == 2
        assert src.profile["compress"] == "deflate"
        expected = (np.arange(1200 * 1000).reshape(1200, 1000) % 251).astype(np.uint8)
        np.testing.assert_array_equal(src.read(1), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]  # no temporary left


def test_bands_chunked_apart_and_floats_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, (3, 300, 260)).astype(np.float32)
    values[1, 10:20, 30:40] = np.nan
    lazy = xr.DataArray(da.from_array(values, chunks=(1, 128, 100)), dims=("band", "y", "x"))
    lazy = lazy.rio.write_crs("EPSG:32614").rio.write_transform(TRANSFORM)
    path = write_raster(lazy, tmp_path / "bands.tif", progress=False)
    with rasterio.open(path) as src:
        assert src.count == 3 and src.dtypes[0] == "float32"
        np.testing.assert_array_equal(src.read(), values)


def test_a_plain_tiled_geotiff_when_asked(tmp_path: Path) -> None:
    path = write_raster(lazy_raster(300, 200), tmp_path / "plain.tif", cog=False, progress=False)
    with rasterio.open(path) as src:
        assert src.overviews(1) == [] and src.shape == (300, 200)


def test_an_existing_output_is_kept_unless_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "out.tif"
    path.write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        write_raster(lazy_raster(), path, progress=False)
    assert path.read_bytes() == b"old"
    write_raster(lazy_raster(300, 200), path, overwrite=True, progress=False)
    with rasterio.open(path) as src:
        assert src.shape == (300, 200)


def test_an_interrupted_write_leaves_nothing(tmp_path: Path) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), dask.config.set(scheduler="threads"):
        write_raster(lazy_raster(fail=interrupt), tmp_path / "out.tif", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_overwrite_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "out.tif"
    write_raster(lazy_raster(300, 200), path, progress=False)
    before = path.read_bytes()

    def fail() -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_raster(lazy_raster(fail=fail), path, overwrite=True, progress=False)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_a_worker_that_dies_fails_the_run_clearly(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")

    def die() -> None:
        os._exit(1)

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster),
    ):
        with pytest.raises(WorkerDiedError, match=r"worker died .* No output was written"):
            write_raster(lazy_raster(fail=die), tmp_path / "out.tif", progress=False)
        assert list(tmp_path.iterdir()) == []
        path = write_raster(lazy_raster(), tmp_path / "out.tif", progress=False)  # recovered
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32614


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="is a folder"):
        write_raster(lazy_raster(), tmp_path, progress=False)
    table = xr.DataArray(np.zeros((3, 4)), dims=("row", "col"))
    with pytest.raises(ParameterError, match="needs y and x"):
        write_raster(table, tmp_path / "t.tif", progress=False)
