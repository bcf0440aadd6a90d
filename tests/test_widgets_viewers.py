"""BatchViewer, ResultsGrid and SpotCheckViewer driven through their methods, no browser."""

from __future__ import annotations

import subprocess
import sys

import ipywidgets as widgets
import numpy as np
import pandas as pd
import pytest
import torch

from cdtools.chips.data import ChangeDataLoaders, prepare_data
from cdtools.chips.export import export_training_data
from cdtools.errors import ParameterError
from cdtools.io.pair import load_pair
from cdtools.learn.detector import ChangeDetector
from cdtools.regions.table import predictions_to_regions
from cdtools.widgets import BatchViewer, ResultsGrid, SpotCheckViewer
from cdtools.widgets.pager import to_png
from tests.conftest import make_pair
from tests.test_regions import RAW, change_map

PNG = b"\x89PNG"


def picture(panel: BatchViewer | ResultsGrid | SpotCheckViewer) -> bytes:
    """The PNG shown (ipywidgets keeps it as a memoryview)."""
    return bytes(panel.image.value)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> ChangeDataLoaders:
    """25 chips of 64 px: 4 training batches of 4 (shuffled, augmented) and 2 validation."""
    folder = tmp_path_factory.mktemp("viewers")
    pair = make_pair(folder / "scene", height=192, width=192, square=(30, 70, 40, 90))
    chips = export_training_data(
        pair.before, pair.after, pair.polygons, folder / "chips",
        chip_size=64, stride=32, progress=False,
    )  # fmt: skip
    return prepare_data(chips, chip_size=64, batch_size=4, val_split_pct=0.25, seed=0)


@pytest.fixture(scope="module")
def detector(data: ChangeDataLoaders) -> ChangeDetector:
    torch.manual_seed(0)
    return ChangeDetector(data, pretrained=False)  # untrained: the pictures are what is tested


def test_panels_import_lazily() -> None:
    # In a fresh interpreter: cdtools.widgets names the panels without importing any of
    # them (or ipywidgets); asking for one imports its module.
    code = (
        "import sys, cdtools.widgets as w\n"
        "assert {'BatchViewer', 'ResultsGrid', 'SpotCheckViewer'} <= set(dir(w))\n"
        "assert 'ipywidgets' not in sys.modules, 'ipywidgets imported early'\n"
        "assert 'cdtools.widgets.batch_viewer' not in sys.modules\n"
        "w.BatchViewer\n"
        "assert 'cdtools.widgets.batch_viewer' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_a_panel_displays_its_vbox_holding_the_picture(
    data: ChangeDataLoaders, monkeypatch: pytest.MonkeyPatch
) -> None:
    import IPython.display

    shown: list[object] = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    viewer = BatchViewer(data, rows=1)
    viewer._ipython_display_()
    assert shown == [viewer.widget]
    assert isinstance(viewer.widget, widgets.VBox) and viewer.image in viewer.widget.children
    assert viewer.image.format == "png"


def test_batch_viewer_pages_through_training_batches_and_goes_back(
    data: ChangeDataLoaders,
) -> None:
    viewer = BatchViewer(data, rows=2)
    first = picture(viewer)
    assert first.startswith(PNG) and viewer.page == 0
    assert viewer.pager.label.value == "batch 1"  # training batches have no last page
    assert viewer.pager.previous_button.disabled and not viewer.pager.next_button.disabled
    viewer.next()
    second = picture(viewer)
    assert viewer.page == 1 and second.startswith(PNG) and second != first
    assert viewer.pager.label.value == "batch 2" and not viewer.pager.previous_button.disabled
    viewer.previous()
    assert viewer.page == 0 and picture(viewer) == first  # the same picture
    viewer.previous()  # nothing before the first
    assert viewer.page == 0
    viewer.show(6)  # past the 4 batches of an epoch: the next epoch's
    assert viewer.pager.label.value == "batch 7" and picture(viewer) not in (first, second)
    viewer.show(1)
    assert picture(viewer) == second
    with pytest.raises(ParameterError, match="pass a page from 0 or more"):
        viewer.show(-1)


def test_batch_viewer_shows_validation_batches_in_order_as_show_batch_draws(
    data: ChangeDataLoaders,
) -> None:
    viewer = BatchViewer(data, rows=3, split="valid")
    batches = list(data.valid)
    assert len(batches) == 2 and viewer.pager.label.value == "batch 1 of 2"
    assert picture(viewer) == to_png(data.draw_batch(batches[0], rows=3))
    viewer.next()
    assert picture(viewer) == to_png(data.draw_batch(batches[1], rows=3))
    assert viewer.pager.next_button.disabled and viewer.pager.label.value == "batch 2 of 2"
    viewer.next()  # the last page stays
    assert viewer.page == 1
    fig = data.show_batch(rows=3, split="valid")  # show_batch draws with draw_batch too
    assert to_png(fig) == to_png(data.draw_batch(batches[0], rows=3))
    with pytest.raises(ParameterError, match="'train' or 'valid'"):
        BatchViewer(data, split="test")  # type: ignore[arg-type]


def test_results_grid_moves_the_threshold_without_predicting_again(
    detector: ChangeDetector,
) -> None:
    calls = []
    hook = detector.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        grid = ResultsGrid(detector, rows=2)
        assert len(calls) == 1 and grid.slider.value == detector.threshold == 0.5
        first = picture(grid)
        assert first.startswith(PNG) and grid.pager.label.value == "batch 1 of 2"
        assert first == to_png(detector.show_results(rows=2, threshold=0.5))  # what it draws
        prob = grid._results[0][3].clone()
        calls.clear()
        grid.set_threshold(0.05)  # untrained, all probabilities are near 0.48
        low = picture(grid)
        assert low != first and grid.slider.value == 0.05
        assert low == to_png(detector.show_results(rows=2, threshold=0.05))
        calls.clear()
        grid.slider.value = 0.5  # what the slider does: set_threshold
        assert grid.threshold == 0.5 and picture(grid) == first
        assert not calls and torch.equal(grid._results[0][3], prob)
        assert detector.threshold == 0.5  # the detector's own is not changed
        grid.next()
        assert len(calls) == 1 and grid.page == 1 and grid.pager.next_button.disabled
        assert picture(grid) == to_png(detector.show_results(rows=2, batch=1))
        calls.clear()
        grid.set_threshold(0.05)
        grid.previous()
        assert not calls and grid.pager.previous_button.disabled
        assert picture(grid) == low  # page 0 at the threshold now set
    finally:
        hook.remove()
    with pytest.raises(ParameterError, match=r"in \[0, 1\]"):
        grid.set_threshold(1.5)


def test_show_results_picks_a_batch_and_a_threshold(detector: ChangeDetector) -> None:
    fig = detector.show_results(rows=1, threshold=0.3, batch=1)
    assert [ax.get_title() for ax in fig.axes[:4]] == ["before", "after", "truth", "prediction"]
    assert len(fig.axes) == 4
    with pytest.raises(ParameterError, match="one of the 2 validation batches; pass 0 to 1"):
        detector.show_results(batch=2)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory):
    """As tests/test_regions.py's: regions of 120, 400 and 80 px (30, 100 and 20 m²), the
    change map also as a GeoTIFF."""
    folder = tmp_path_factory.mktemp("spot")
    files = make_pair(folder / "scene")
    pair = load_pair(files.before, files.after, chunks={"band": -1, "y": 64, "x": 64})
    prob = np.zeros((files.height, files.width), dtype=np.float32)
    prob[0:10, 0:12] = 0.9
    prob[140:160, 90:110] = 0.9
    prob[292:300, 190:200] = 0.9
    change = change_map(prob)
    regions = predictions_to_regions(change, **RAW)
    assert regions["area_m2"].tolist() == [100, 30, 20]
    return pair, change, regions, folder


CLASSES = pd.DataFrame(
    {
        "id": [3, 1, 2],
        "class_before": ["Pasture", "Forest", None],
        "confidence_before": [0.7, 0.91, np.nan],
        "class_after": ["River", "Residential", "Highway"],
        "confidence_after": [0.6, 0.87, 0.8],
    }
)


def test_spot_check_viewer_steps_through_regions_largest_first(scene) -> None:
    pair, change, regions, folder = scene
    path = folder / "change.tif"
    change.rio.to_raster(path)
    viewer = SpotCheckViewer(pair, path, regions.iloc[::-1], size=48, classes=CLASSES)
    path.unlink()  # read once: paging does not read it again
    assert viewer.regions["id"].tolist() == [1, 2, 3]
    first = picture(viewer)
    assert first.startswith(PNG) and viewer.pager.label.value == "region 1 of 3"
    assert viewer.text.value.startswith("<b>region id 1</b> · area 100 m²")
    assert "Forest → Residential (confidence 0.91 → 0.87)" in viewer.text.value
    assert viewer.pager.previous_button.disabled and not viewer.pager.next_button.disabled
    viewer.next()
    assert viewer.page == 1 and viewer.slider.value == 2 and picture(viewer) != first
    assert "region id 2</b> · area 30 m² · no data → Highway" in viewer.text.value
    assert "confidence" not in viewer.text.value  # none before: no confidences
    viewer.previous()
    assert picture(viewer) == first and viewer.slider.value == 1
    viewer.slider.value = 3  # the slider jumps
    assert viewer.page == 2 and viewer.pager.next_button.disabled
    assert "region id 3</b> · area 20 m² · Pasture → River" in viewer.text.value
    assert viewer.pager.label.value == "region 3 of 3"
    with pytest.raises(ParameterError, match="pass a page from 0 to 2"):
        viewer.show(3)


def test_spot_check_viewer_reads_classes_from_the_regions_table(scene) -> None:
    pair, change, regions, _ = scene
    found = CLASSES.set_index("id")
    merged = regions.assign(  # assign keeps the attrs the outlines are found with
        class_before=regions["id"].map(found["class_before"]),
        class_after=regions["id"].map(found["class_after"]),
    )
    viewer = SpotCheckViewer(pair, change, merged, size=32)
    assert viewer.text.value == "<b>region id 1</b> · area 100 m² · Forest → Residential"
    plain = SpotCheckViewer(pair, change, regions, size=32)
    assert plain.text.value == "<b>region id 1</b> · area 100 m²"
    with pytest.raises(ParameterError, match="classify_patches returns"):
        SpotCheckViewer(pair, change, regions, classes=CLASSES.drop(columns="class_after"))


def test_spot_check_viewer_without_regions_says_so(scene) -> None:
    pair, change, regions, _ = scene
    viewer = SpotCheckViewer(pair, change, regions.iloc[:0])
    assert picture(viewer).startswith(PNG) and viewer.text.value == "no change regions"
    assert viewer.pager.previous_button.disabled and viewer.pager.next_button.disabled
    assert viewer.slider.disabled and viewer.pager.label.value == "no regions"
    viewer.next()
    viewer.previous()
    assert viewer.page == 0
