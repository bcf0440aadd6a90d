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
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import numpy as np
import pytest

OUTPUT = Path(os.environ.get("CDTOOLS_TEST_OUTPUT", Path(__file__).parent / "outputs")) / "browser"
TOKEN = uuid.uuid4().hex
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
    found = os.environ.get("CDTOOLS_CHROMIUM") or shutil.which("chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        found = None
    if found is None:
        message = (
            "no Chromium or Playwright here: run `make browser` (installs Debian's chromium "
            "package as root) and `make install`, or set CDTOOLS_CHROMIUM to a Chromium binary"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """A JupyterLab server on localhost over a folder holding the test notebook."""
    chromium = _chromium()
    root = tmp_path_factory.mktemp("lab")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, root / "panels.ipynb")
    config = root / ".config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}'
    )
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / ".ws"),
    }
    log = (root / "lab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={root}", "--ServerApp.disable_check_xsrf=False",
        ],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_for_port(port, server, root / "lab.log")
        yield chromium, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_for_port(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not start in 60 s:\n{log.read_text()[-3000:]}")


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def test_panels_render_and_respond_in_chromium(lab) -> None:
    from playwright.sync_api import sync_playwright

    chromium, base = lab
    OUTPUT.mkdir(parents=True, exist_ok=True)
    url = f"{base}/lab/workspaces/{uuid.uuid4().hex}/tree/panels.ipynb?token={TOKEN}&reset"
    args = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url)
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
            _start_kernel(page)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            page.wait_for_selector("text=all panels shown", timeout=300_000)
            _check_split_map(page, page.locator(".cdtools-split-map .leaflet-container"))
            _check_time_slider(page, page.locator(".cdtools-time-slider"))
            _check_spot_check(page)
        finally:
            page.screenshot(path=OUTPUT / "lab.png", full_page=True)
            browser.close()


def _start_kernel(page) -> None:
    """Accept Lab's kernel dialog when it asks, then wait for the kernel to be idle."""
    select = page.locator(".jp-Dialog button", has_text="Select")
    try:
        select.wait_for(timeout=10_000)
        select.click()
    except Exception:  # no dialog: Lab started the notebook's kernel by itself
        pass
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000)


def _loaded(page, container) -> None:
    """Wait until every image layer of a map has really loaded (broken images count 0 wide)."""
    container.scroll_into_view_if_needed()
    page.wait_for_function(
        """(map) => {
            const images = [...map.querySelectorAll('img.leaflet-image-layer')];
            return images.length > 0 && images.every(i => i.complete && i.naturalWidth > 0);
        }""",
        arg=container.element_handle(),
        timeout=60_000,
    )
    page.wait_for_timeout(500)  # let Leaflet finish its zoom animation


def _check_split_map(page, container) -> None:
    _loaded(page, container)
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
    _loaded(page, container)
    first = container.screenshot(path=OUTPUT / "time_slider_1.png")
    assert _pixels(first).std() > 10, "the time slider map is blank"
    panel.locator(".noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "(panel) => panel.innerText.includes('2 of 3')", arg=panel.element_handle(), timeout=30_000
    )
    _loaded(page, container)
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
