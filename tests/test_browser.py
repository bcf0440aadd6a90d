"""The panels in a real browser: JupyterLab on localhost, driven through Debian's Chromium.

A notebook with a SplitMap, a TimeSlider and a SpotCheckViewer is run inside JupyterLab;
the test checks that maps render (not blank, the swipe really splits the dates), that
moving the date slider changes the map and that stepping the spot check changes its
picture. Screenshots go to ``tests/outputs/browser/`` (or ``$CDTOOLS_TEST_OUTPUT``).

Under CI (``CI=true``) the test must run; elsewhere it skips when Chromium or Playwright
is missing (``make browser`` installs Debian's chromium package when it can).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import nbformat
import numpy as np
import pytest

from tests.lab_browser import (
    browser_page,
    find_chromium,
    jupyter_lab,
    run_notebook,
    wait_for_images,
)

OUTPUT = Path(os.environ.get("CDTOOLS_TEST_OUTPUT", Path(__file__).parent / "outputs")) / "browser"
CELLS = [
    """import cdtools
from cdtools.widgets import SplitMap, SpotCheckViewer, TimeSlider

world = cdtools.make_scene_pair("world", size=512, seed=3)
truth = world.change_mask  # the true change stands in for a detector's map: no training
regions = cdtools.regions_to_polygons(truth)
series = cdtools.make_time_series("series", dates=3, size=256, seed=2)""",
    "SplitMap(world.before, world.after, change=truth, regions=regions)",
    "TimeSlider(series, changes=series.changes)",
    """pair = cdtools.load_pair(world.before, world.after)
SpotCheckViewer(pair, truth, cdtools.predictions_to_regions(truth))""",
    'print("all panels shown")',
]


def _chromium() -> str:
    """Chromium's path, or skip (fail under CI) saying how to get it."""
    found = find_chromium()
    if found is None:
        message = (
            "no Chromium or Playwright here: run `make browser` (installs Debian's chromium "
            "package as root) and `make install`, or set CDTOOLS_CHROMIUM to a Chromium binary"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def test_panels_render_and_respond_in_chromium(tmp_path: Path) -> None:
    chromium = _chromium()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, tmp_path / "panels.ipynb")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with jupyter_lab(tmp_path) as lab, browser_page(chromium) as page:
        try:
            run_notebook(page, lab, "panels.ipynb", done="text=all panels shown")
            _check_split_map(page, page.locator(".cdtools-split-map .leaflet-container"))
            _check_time_slider(page, page.locator(".cdtools-time-slider"))
            _check_spot_check(page)
        finally:
            page.screenshot(path=OUTPUT / "lab.png", full_page=True)


def _check_split_map(page, container) -> None:
    wait_for_images(page, container)
    assert container.locator(".leaflet-sbs-divider").count() == 1, "the swipe divider is missing"
    wide = _pixels(container.screenshot(path=OUTPUT / "split_map.png"))
    width = wide.shape[1]
    left, right = wide[:, : width // 2 - 20], wide[:, width // 2 + 20 :]
    for side, name in ((left, "before"), (right, "after")):
        assert side.std() > 10, f"the {name} side of the split map is blank"
    # Drag the swipe to the left: the strip it passes over turns from after to before.
    handle = container.locator("input.leaflet-sbs-range")
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.15, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    page.wait_for_timeout(300)
    swiped = _pixels(container.screenshot(path=OUTPUT / "split_map_swiped.png"))
    strip = slice(int(width * 0.25), int(width * 0.45))
    moved = np.abs(swiped[:, strip] - wide[:, strip]).mean()
    assert moved > 5, f"swiping changed the map by only {moved:.1f} grey levels"


def _check_time_slider(page, panel) -> None:
    container = panel.locator(".leaflet-container")
    wait_for_images(page, container)
    first = container.screenshot(path=OUTPUT / "time_slider_1.png")
    assert _pixels(first).std() > 10, "the time slider map is blank"
    panel.locator(".noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "(panel) => panel.innerText.includes('2 of 3')", arg=panel.element_handle(), timeout=30_000
    )
    wait_for_images(page, container)
    second = container.screenshot(path=OUTPUT / "time_slider_2.png")
    panel.screenshot(path=OUTPUT / "time_slider_panel.png")
    changed = np.abs(_pixels(second) - _pixels(first)).mean()
    assert changed > 3, f"moving the date slider changed the map by only {changed:.1f} grey levels"


def _check_spot_check(page) -> None:
    viewer = page.locator(".cdtools-spot-check")
    viewer.scroll_into_view_if_needed()
    first = _pixels(viewer.screenshot(path=OUTPUT / "spot_check_1.png"))
    assert first.std() > 10, "the spot-check picture is blank"
    viewer.locator("button", has_text="next").first.click()
    page.wait_for_timeout(1500)
    second = _pixels(viewer.screenshot(path=OUTPUT / "spot_check_2.png"))
    assert second.shape != first.shape or np.abs(second - first).mean() > 3, (
        "stepping to the next region did not change the spot-check picture"
    )
