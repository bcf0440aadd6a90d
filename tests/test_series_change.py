"""detect_series_change and first_change_date: change per step of a series, date of first change."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import CRS, ORIGIN, PIXEL
from rasterio.transform import from_origin
from scipy.ndimage import gaussian_filter

import cdtools
from cdtools.errors import CdtoolsWarning, ParameterError
from cdtools.io.raster import write_geotiff
from cdtools.unsupervised.series import FIRST_NODATA, NO_CHANGE, first_change_shares

SIZE, BANDS, NODATA_IN = 96, 4, -9999.0
YEARS = (2001, 2002, 2003, 2004)
# Planted change: (rows, cols) of new ground at each step; A changes twice (steps 0, 2).
A = (slice(20, 40), slice(20, 44))
B = (slice(56, 76), slice(24, 48))
C = (slice(30, 54), slice(60, 84))
PLANTED = {0: [A], 1: [B], 2: [C, A]}
FIRST = [(A, 1), (B, 2), (C, 3)]  # the index of the date where each square first shows change
BARE = np.array([[900, 300, 1100, 500], [200, 1000, 400, 900], [1200, 1200, 100, 200]])
NO_DATA_COLS = slice(0, 4)  # no date has data here
GAP_ROWS = slice(88, 96)  # the first date has no data here (step 0 unknown)


def ground(rng: np.random.Generator) -> np.ndarray:
    """Textured, correlated bands."""
    field = gaussian_filter(rng.normal(0, 1, (BANDS + 1, SIZE, SIZE)), (0, 2, 2))
    return 100 + 400 * (field[:BANDS] + 0.5 * field[BANDS:])


def dates() -> list[np.ndarray]:
    """Four dates: each a gain and offset of the last (not change) plus noise, and the
    planted squares given new, unrelated ground at their steps."""
    rng = np.random.default_rng(0)
    base = ground(rng)
    images = [base.copy()]
    for step in range(len(YEARS) - 1):
        gain, offset = rng.uniform(0.8, 1.25, BANDS), rng.uniform(-20, 20, BANDS)
        image = base * gain[:, None, None] + offset[:, None, None]
        new = 0.3 * ground(rng) + BARE[step][:, None, None]  # bare ground, a new colour
        for square in PLANTED[step]:
            base[(slice(None), *square)] = new[(slice(None), *square)]
            image[(slice(None), *square)] = new[(slice(None), *square)]
        images.append(image + rng.normal(0, 2, image.shape))
    for k, image in enumerate(images):
        image[:, :, NO_DATA_COLS] = NODATA_IN
        if k == 0:
            image[:, GAP_ROWS] = NODATA_IN
    return [image.astype(np.float32) for image in images]


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("series")
    transform = from_origin(*ORIGIN, PIXEL, PIXEL)
    for year, image in zip(YEARS, dates(), strict=True):
        write_geotiff(folder / f"{year}.tif", image, transform=transform, crs=CRS, nodata=NODATA_IN)
    return cdtools.load_series(folder, chunks={"band": -1, "y": 48, "x": 48})


@pytest.fixture(scope="module", params=["irmad", "cva"])
def steps(series, request: pytest.FixtureRequest):
    return cdtools.detect_series_change(series, method=request.param)


def test_one_lazy_uint8_map_per_step_named_by_its_dates(series, steps) -> None:
    assert steps.dims == ("step", "y", "x") and steps.dtype == np.uint8
    assert steps.chunks is not None  # lazy
    assert steps.sizes["step"] == len(YEARS) - 1
    assert list(steps.step.values) == [
        "2001-01-01 -> 2002-01-01", "2002-01-01 -> 2003-01-01", "2003-01-01 -> 2004-01-01",
    ]  # fmt: skip
    assert list(steps.from_date.values) == list(series.time.values[:-1])
    assert list(steps.to_date.values) == list(series.time.values[1:])
    assert steps.rio.crs == CRS and steps.rio.transform() == series.rio.transform()
    assert steps.rio.nodata == 255 and steps.attrs["threshold"] == 0.5
    assert steps.attrs["dates"] == [f"{y}-01-01" for y in YEARS]
    assert len(steps.attrs["threshold_statistic"]) == 3


def test_each_step_is_the_change_of_its_own_pair(series, steps) -> None:
    method = steps.attrs["method"]
    for k in range(steps.sizes["step"]):
        alone = cdtools.detect_change(series.isel(time=[k, k + 1]), method=method)
        np.testing.assert_array_equal(steps.isel(step=k).values, alone.values)
        assert steps.attrs["threshold_statistic"][k] == alone.attrs["threshold_statistic"]


def test_first_change_dates_the_planted_squares(steps) -> None:
    first = cdtools.first_change_date(steps)
    assert first.dims == ("y", "x") and first.dtype == np.int16 and first.chunks is not None
    values = first.values
    for square, index in FIRST:
        inner = values[square][2:-2, 2:-2]  # edges blur with the texture's smoothing
        assert (inner == index).mean() > 0.97, (index, np.unique(inner, return_counts=True))
    unchanged = np.ones(values.shape, dtype=bool)
    for square, _ in FIRST:
        unchanged[square] = False
    unchanged[:, NO_DATA_COLS] = False
    assert (values[unchanged] == NO_CHANGE).mean() > 0.95
    names = first_change_shares(first)
    assert list(names) == ["no change", "2002-01-01", "2003-01-01", "2004-01-01"]
    assert sum(names.values()) == pytest.approx(1.0)


def test_no_data_is_minus_one_and_a_gap_is_skipped(steps) -> None:
    assert (steps.isel(step=0).values[GAP_ROWS] == 255).all()
    values = cdtools.first_change_date(steps).values
    assert (values[:, NO_DATA_COLS] == FIRST_NODATA).all()
    gap = values[GAP_ROWS, 8:]  # no data in the first date only: later steps still count
    assert (gap >= 0).all() and (gap == NO_CHANGE).mean() > 0.9


def test_the_raster_is_georeferenced_with_its_legend(steps, tmp_path: Path) -> None:
    first = cdtools.first_change_date(steps)
    assert first.rio.crs == CRS and first.rio.nodata == FIRST_NODATA
    assert first.rio.transform() == steps.rio.transform()
    assert first.attrs["dates"] == [f"{y}-01-01" for y in YEARS]
    assert first.attrs["legend"][0] == "no change"
    assert first.attrs["legend"][2] == "2003-01-01 (since 2002-01-01)"
    path = cdtools.write_raster(first, tmp_path / "first.tif")
    with rasterio.open(path) as src:
        assert src.dtypes[0] == "int16" and src.nodata == FIRST_NODATA and src.crs == CRS
        np.testing.assert_array_equal(src.read(1), first.values)


def test_a_higher_threshold_dates_less_change(steps) -> None:
    auto = cdtools.first_change_date(steps).values
    strict = cdtools.first_change_date(steps, threshold=0.9)
    assert strict.attrs["threshold"] == 0.9
    assert (strict.values > 0).sum() < (auto > 0).sum()
    assert ((strict.values > 0) <= (auto > 0)).all()  # only fewer pixels
    with pytest.raises(ParameterError, match=r"\[0, 1\)"):
        cdtools.first_change_date(steps, threshold=1.0)


def test_the_figure_has_one_legend_entry_per_date(steps) -> None:
    from matplotlib.figure import Figure

    first = cdtools.first_change_date(steps)
    fig = cdtools.plot_first_change(first)
    assert isinstance(fig, Figure)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    shares = first_change_shares(first)
    assert texts[0] == f"no change: {shares['no change']:.1%}"
    assert texts[1:] == [
        f"{a} → {b}: {shares[f'{b}-01-01']:.1%}" for a, b in itertools.pairwise(YEARS)
    ]
    assert fig.axes[0].get_title().startswith("date of first change")


def test_a_step_without_change_is_named_in_the_warning(series) -> None:
    repeated = series.isel(time=[0, 1, 1])
    repeated = repeated.assign_coords(time=series.time.values[:3])
    with pytest.warns(CdtoolsWarning, match=r"step 1 \(2002-01-01 -> 2003-01-01\).*do not differ"):
        steps = cdtools.detect_series_change(repeated, method="cva")
    values = steps.isel(step=1).values
    assert set(np.unique(values)) <= {0, 255}


def test_what_is_not_a_series_is_refused(series) -> None:
    with pytest.raises(ParameterError, match="two or more dates"):
        cdtools.detect_series_change(series.isel(time=[0]))
    with pytest.raises(ParameterError, match="time, band, y, x"):
        cdtools.detect_series_change(series.isel(band=0))
    with pytest.raises(ParameterError, match="step, y, x"):
        cdtools.first_change_date(series.isel(band=0))


def test_a_sample_series_on_a_time_slider(tmp_path: Path) -> None:
    """make_time_series through load_series: steps show on TimeSlider, one per date."""
    from cdtools.widgets.time_slider import _CLEAR

    sample = cdtools.make_time_series(tmp_path, dates=3, size=256, seed=0)
    series = cdtools.load_series(sample)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CdtoolsWarning)  # real change in every step
        steps = cdtools.detect_series_change(series, method="cva")
    assert list(steps.step.values) == [
        f"{a} -> {b}" for a, b in zip(sample.dates, sample.dates[1:], strict=False)
    ]
    assert steps.rio.crs == sample.crs and steps.rio.transform() == sample.transform
    slider = cdtools.TimeSlider(series, changes=steps, max_size=32)
    assert len(slider.change_urls) == 3 and slider.change_urls[0] is None
    slider.show(2)
    assert slider.change.url == slider.change_urls[2] != _CLEAR
    truth = np.stack([rasterio.open(p).read(1) for p in sample.changes])
    first = cdtools.first_change_date(steps).values
    changed = truth.any(axis=0)
    assert (first[changed] > 0).mean() > 0.5  # most true change is dated
