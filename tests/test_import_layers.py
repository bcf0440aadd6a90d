"""Imports run one way: each layer of cdtools imports nothing from the layers above it.

Each layer is imported in a fresh interpreter in which every module of the layers above
raises ImportError, so a wrong-way import fails here, not in a user's session. Imports
inside functions (made when a verb runs) are not import-time dependencies and may reach
up; ``ChangeDetector.predict`` drawing with ``plots`` is one.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

import cdtools

# Lowest first. The sample world (synthetic) stands on the base alone: it never imports
# the learners; the models trained on it are in samples, at the top.
LAYERS: dict[str, tuple[str, ...]] = {
    "base": ("errors", "landcover.classes", "learn.fastai_api", "baseline"),
    "io and the sample world": (
        "io.raster", "io.mosaic", "io.pair", "io.series", "io.blocks", "io.cog", "io.download",
        "io.manifest", "synthetic",
    ),
    "chips": (
        "plots", "chips.labels", "chips.folder", "chips.writer", "chips.export", "chips.augment",
        "chips.coarsen", "chips.stats", "chips.pairs", "chips.data", "chips.sparse_labels",
    ),
    "learn": (
        "models", "learn.package", "learn.onnx_export", "learn.checkpoint", "learn.losses",
        "learn.metrics", "learn.precision", "learn.autocast", "learn.averaging", "learn.tta",
        "learn.epoch_log", "learn.trainable", "learn.detector",
    ),
    "scene": (
        "scene.tiling", "scene.model", "scene.halo", "scene.stitch", "scene.runtime",
        "scene.predict", "scene.changemap",
        "unsupervised.sample", "unsupervised.threshold", "unsupervised.cva", "unsupervised.irmad",
        "unsupervised.pca_kmeans", "unsupervised.score_map", "unsupervised.detect",
        "unsupervised.weak_labels", "unsupervised.series",
    ),
    "regions and land cover": (
        "regions.table", "regions.parcels", "regions.spotcheck", "landcover.data",
        "landcover.classifier", "landcover.transition",
    ),
    "top": ("samples", "widgets", "demo", "cli"),
}  # fmt: skip
# folders of modules
WINGS = ("io", "chips", "learn", "scene", "unsupervised", "regions", "landcover")

BLOCKER = """
import importlib, sys
blocked = sys.argv[2].split(",") if sys.argv[2] else []

class Above:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in blocked):
            raise ImportError(f"{name} is in a layer above the one being imported")
        return None

sys.meta_path.insert(0, Above())
for module in sys.argv[1].split(","):
    importlib.import_module(module)
"""


def modules(layer: str) -> list[str]:
    return [f"cdtools.{m}" for m in LAYERS[layer]]


def blocked_import(names: list[str], blocked: list[str]) -> subprocess.Popen[str]:
    """Import ``names`` in a fresh interpreter where importing any of ``blocked`` fails."""
    return subprocess.Popen(
        [sys.executable, "-c", BLOCKER, ",".join(names), ",".join(blocked)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def imports() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Every layer's import, and the wrong-way probe, started at once: each spends most of
    its time importing torch and fastai, so they share the cores instead of queueing."""
    names = list(LAYERS)
    runs = {
        layer: blocked_import(
            modules(layer), [m for upper in names[i + 1 :] for m in modules(upper)]
        )
        for i, layer in enumerate(names)
    }
    # the detector needs the chips layer, so blocking it must fail
    runs["wrong way"] = blocked_import(["cdtools.learn.detector"], ["cdtools.chips.data"])
    yield runs
    for run in runs.values():
        run.kill()
        run.communicate()


@pytest.mark.parametrize("layer", list(LAYERS))
def test_a_layer_imports_nothing_from_the_layers_above(
    layer: str, imports: dict[str, subprocess.Popen[str]]
) -> None:
    _, stderr = imports[layer].communicate()
    assert imports[layer].returncode == 0, stderr.strip().splitlines()[-1]


def test_every_module_has_a_layer() -> None:
    placed = {m for layer in LAYERS.values() for m in layer}
    found = set()
    for module in pkgutil.iter_modules(cdtools.__path__):
        if module.name in WINGS:
            wing = importlib.import_module(f"cdtools.{module.name}")
            found |= {f"{module.name}.{m.name}" for m in pkgutil.iter_modules(wing.__path__)}
        else:
            found.add(module.name)
    assert found == placed


def test_a_wrong_way_import_is_caught(imports: dict[str, subprocess.Popen[str]]) -> None:
    # The check itself can fail: blocking a layer the detector needs fails its import.
    _, stderr = imports["wrong way"].communicate()
    assert imports["wrong way"].returncode != 0
    assert "cdtools.chips.data is in a layer above" in stderr


def test_scene_inference_does_not_import_fastai() -> None:
    # fastai takes about 5 s to import; predict_scene and detect_change never use it.
    code = (
        "import sys, cdtools.scene.predict, cdtools.unsupervised.detect; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'fastai'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
