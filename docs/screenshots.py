"""Take the README's pictures of the panels: run notebooks in JupyterLab, in Chromium.

    .venv/bin/python docs/screenshots.py

A copy of each notebook below is run top to bottom in a real JupyterLab (as in ``make lab``),
and every cdtools panel it shows is saved to ``docs/images/<panel>.jpg``. Needs Chromium
and Playwright, as the browser test does (``make browser``).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lab_browser import (  # noqa: E402
    browser_page,
    find_chromium,
    jupyter_lab,
    run_notebook,
    wait_for_images,
)

PANELS = {  # notebook: the panel it shows, as its CSS class
    "00_quickstart.ipynb": "cdtools-split-map",
    "01_export_training_data.ipynb": "cdtools-batch-viewer",
    "02_train_change_detector.ipynb": "cdtools-results-grid",
    "05_spot_check_regions.ipynb": "cdtools-spot-check",
    "07_time_slider.ipynb": "cdtools-time-slider",
}


def main() -> None:
    chromium = find_chromium()
    if chromium is None:
        sys.exit("no Chromium or Playwright: run `make browser` and `make install` first")
    out = ROOT / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    # Copies: JupyterLab autosaves open notebooks, and the committed ones come from nbval's run.
    root = Path(tempfile.mkdtemp(prefix="cdtools-screenshots-"))
    for notebook in PANELS:
        shutil.copy(ROOT / "notebooks" / notebook, root / notebook)
    with jupyter_lab(root, timeout=90) as lab, browser_page(chromium) as page:
        for notebook, panel in PANELS.items():
            run_notebook(page, lab, notebook, done=f".{panel}", timeout_s=600)
            page.wait_for_selector(
                '.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=600_000
            )
            element = page.locator(f".{panel}").first
            maps = element.locator(".leaflet-container")
            if maps.count():
                wait_for_images(page, maps.first)
            element.scroll_into_view_if_needed()
            page.wait_for_timeout(1000)
            path = out / f"{panel.removeprefix('cdtools-')}.jpg"
            element.screenshot(path=path, type="jpeg", quality=85)
            print("wrote", path.relative_to(ROOT))


if __name__ == "__main__":
    main()
