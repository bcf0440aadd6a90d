from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from cdtools.errors import GridError, RasterError
from cdtools.io.raster import (
    atomic_path,
    check_same_grid,
    describe,
    open_raster,
    read_window,
    write_geotiff,
)
from tests.conftest import CRS, Pair


def test_describe_reads_grid(pair: Pair) -> None:
    info = describe(pair.before)
    assert (info.width, info.height, info.count) == (200, 300, 3)
    assert info.crs.to_epsg() == 32614
    assert info.res == (0.5, 0.5)
    assert info.bounds == (620000.0, 3350000.0 - 150.0, 620100.0, 3350000.0)


def test_missing_and_non_raster_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RasterError, match="does not exist"):
        describe(tmp_path / "nope.tif")
    bogus = tmp_path / "notes.tif"
    bogus.write_text("this is not a raster")
    with pytest.raises(RasterError, match="not a raster"):
        describe(bogus)


def test_read_window_pads_past_the_edge(pair: Pair) -> None:
    with open_raster(pair.before) as src:
        data, valid = read_window(src, 280, 190, 32, 32)
        inside = src.read(window=((280, 300), (190, 200)))
    assert data.shape == (3, 32, 32)
    assert valid[:20, :10].all() and not valid[20:].any() and not valid[:, 10:].any()
    np.testing.assert_array_equal(data[:, :20, :10], inside)
    assert (data[:, 20:] == 0).all()


def _write(path: Path, *, origin=(620000.0, 3350000.0), pixel=0.5, crs=CRS, bands=3, size=64):
    data = np.zeros((bands, size, size), dtype=np.uint8)
    write_geotiff(path, data, transform=from_origin(*origin, pixel, pixel), crs=crs)
    return describe(path)


def test_pair_checks_name_the_problem(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.tif")
    with pytest.raises(GridError, match=r"different CRSs \(EPSG:32614 vs EPSG:32615\)"):
        check_same_grid(ref, _write(tmp_path / "crs.tif", crs="EPSG:32615"))
    with pytest.raises(GridError, match="different pixel sizes"):
        check_same_grid(ref, _write(tmp_path / "res.tif", pixel=1.0))
    with pytest.raises(GridError, match="3 bands but after has 4"):
        check_same_grid(ref, _write(tmp_path / "bands.tif", bands=4))
    with pytest.raises(GridError, match=r"do not overlap.*3168 units apart"):
        check_same_grid(ref, _write(tmp_path / "far.tif", origin=(623200.0, 3350000.0)))
    with pytest.raises(GridError, match=r"not on the same pixel grid.*rio warp"):
        check_same_grid(ref, _write(tmp_path / "shift.tif", origin=(620010.0, 3350000.0)))
    check_same_grid(ref, _write(tmp_path / "same.tif"))


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.tif"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
