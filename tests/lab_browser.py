"""JupyterLab on localhost driven through Debian's Chromium with Playwright.

Used by ``tests/test_browser.py`` and by ``docs/screenshots.py`` (the README's pictures).
Nothing is downloaded: Playwright launches the system Chromium (``make browser``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ARGS = [
    "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
NO_NEWS = '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}'


def find_chromium() -> str | None:
    """Chromium's path when it and Playwright are both here, else None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None
    return os.environ.get("CDTOOLS_CHROMIUM") or shutil.which("chromium")


@contextlib.contextmanager
def jupyter_lab(root: Path, *, timeout: float = 60) -> Iterator[str]:
    """A JupyterLab server over ``root``; yields its base URL with ``?token=...`` to append."""
    config = root / ".lab-config"
    (config / "labconfig").mkdir(parents=True, exist_ok=True)
    (config / "labconfig" / "page_config.json").write_text(NO_NEWS)  # no news popup
    token, port = uuid.uuid4().hex, _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config)}
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(config / "workspaces")
    log_path = config / "lab.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
                "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
            ],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_for_port(port, server, log_path, timeout)
            yield f"http://127.0.0.1:{port}|{token}"
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


@contextlib.contextmanager
def browser_page(chromium: str) -> Iterator[Any]:
    """A headless Chromium page, 1400 x 1000."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def run_notebook(page: Any, lab: str, notebook: str, *, done: str, timeout_s: float = 300) -> None:
    """Open ``notebook`` in a fresh workspace, run all cells, wait for selector ``done``."""
    base, token = lab.split("|")
    page.goto(f"{base}/lab/workspaces/{uuid.uuid4().hex}/tree/{notebook}?token={token}&reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    select = page.locator(".jp-Dialog button", has_text="Select")  # Lab may ask for a kernel
    with contextlib.suppress(Exception):
        select.wait_for(timeout=10_000)
        select.click()
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    page.wait_for_selector(done, timeout=timeout_s * 1000)


def wait_for_images(page: Any, container: Any) -> None:
    """Wait until every image layer of a map has loaded (broken images are 0 wide)."""
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, server: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not start in {timeout:.0f} s:\n{log.read_text()[-3000:]}")
