"""Land-cover patches cut from sample scenes, labelled with the land cover at their centre.

The themed patches of :func:`cdtools.make_landcover_patches` show one class each. Change
leaves mixtures: a new house on a field, a wood with a clearing, a demolished plot among
houses. Patches cut from whole sample scenes, both dates, and labelled with the most
common land-cover class of their central ``centre`` x ``centre`` pixels teach a
classifier the class of the middle of a patch, which is what
:func:`cdtools.classify_patches` asks about each region of change. Centres are drawn at
random and, ``per_change`` times, inside each change of the scene, so that changed land
(bare soil, rubble, new houses and ponds) is seen often enough. The layout is EuroSAT's:
``out_dir/<Class>/<Class>_s<seed>_<date>_<n>.png``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cdtools.errors import ParameterError
from cdtools.io.raster import atomic_path
from cdtools.landcover.classes import EUROSAT_CLASSES
from cdtools.synthetic.outputs import (
    forget_record,
    reusable,
    write_record,
)

_FORMAT = 1
_RECORD = "scene_patches.json"


def make_scene_patches(
    out_dir: str | os.PathLike[str],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    world_size: int = 1024,
    size: int = 64,
    centre: int = 16,
    per_scene: int = 100,
    per_change: int = 6,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write RGB patches of sample scenes in one folder per EuroSAT class.

    Args:
        out_dir: Folder to write into (created if needed).
        seeds: Sample worlds to cut from (:func:`cdtools.make_scene_pair` seeds); keep
            the scenes you evaluate on out of them.
        world_size: Width and height of each world in pixels (0.5 m).
        size: Width and height of a patch in pixels.
        centre: Side of the central window whose most common class labels the patch.
        per_scene: Patches at random places, per world and date.
        per_change: Patches centred inside each change, per world and date.
        seed: Seed of the places drawn.
        overwrite: Make the patches again when ``out_dir`` already holds some; when
            False, patches made there with the same arguments are reused (others raise).

    Returns:
        ``out_dir`` as a Path; classes that no patch fell on have no folder.

    Example:
        >>> import tempfile
        >>> folder = make_scene_patches(tempfile.mkdtemp(), seeds=[0], world_size=256,
        ...                             per_scene=5, per_change=1)
        >>> len(list(folder.glob("*/*.png"))) >= 10
        True
    """
    _check_arguments(seeds, world_size, size, centre, per_scene, per_change, seed)
    folder = Path(out_dir)
    arguments = {
        "format": _FORMAT, "seeds": [int(s) for s in seeds], "world_size": int(world_size),
        "size": int(size), "centre": int(centre), "per_scene": int(per_scene),
        "per_change": int(per_change), "seed": int(seed),
    }  # fmt: skip
    if reusable(folder / _RECORD, arguments, overwrite, what="scene patches"):
        return folder
    forget_record(folder / _RECORD)
    counts = dict.fromkeys(EUROSAT_CLASSES, 0)
    with tempfile.TemporaryDirectory(prefix="cdtools-scene-patches-") as work:
        for world_seed in arguments["seeds"]:
            _cut_world(folder, Path(work), world_seed, arguments, counts)
    write_record(folder / _RECORD, {**arguments, "counts": counts})
    return folder


def _cut_world(
    folder: Path, work: Path, world_seed: int, arguments: dict, counts: dict[str, int]
) -> None:
    """Cut one world's patches from both dates into ``folder``; ``counts`` per class."""
    import rasterio
    from PIL import Image
    from skimage.measure import label

    from cdtools.synthetic.scene import make_scene_pair

    world = make_scene_pair(work / str(world_seed), size=arguments["world_size"], seed=world_seed)
    size, half, c = arguments["size"], arguments["size"] // 2, arguments["centre"] // 2
    rng = np.random.default_rng([arguments["seed"], world_seed])
    with rasterio.open(world.change_mask) as src:
        changes = label(src.read(1) > 0, connectivity=2)
    n_side = changes.shape[0]
    places = rng.integers(half, n_side - half + 1, size=(2, arguments["per_scene"], 2))
    inside = []
    for index in range(1, changes.max() + 1):
        rows, cols = np.nonzero(changes == index)
        picked = rng.integers(0, len(rows), size=arguments["per_change"])
        inside += list(zip(rows[picked], cols[picked], strict=True))
    for d, (date, image_path, landcover_path) in enumerate(
        (
            ("before", world.before, world.landcover_before),
            ("after", world.after, world.landcover_after),
        )
    ):
        with rasterio.open(image_path) as src, rasterio.open(landcover_path) as lc:
            image, landcover = src.read((1, 2, 3)), lc.read(1)
        centres = [*map(tuple, places[d]), *inside]
        for n, (row, col) in enumerate(centres, start=1):
            row, col = (int(np.clip(v, half, n_side - half)) for v in (row, col))
            window = landcover[row - c : row + c, col - c : col + c]
            name = EUROSAT_CLASSES[int(np.bincount(window.ravel(), minlength=10).argmax())]
            patch = image[:, row - half : row - half + size, col - half : col - half + size]
            with atomic_path(folder / name / f"{name}_s{world_seed}_{date}_{n}.png") as tmp:
                Image.fromarray(patch.transpose(1, 2, 0)).save(tmp, format="PNG")
            counts[name] += 1


def _check_arguments(
    seeds: Sequence[int],
    world_size: int,
    size: int,
    centre: int,
    per_scene: int,
    per_change: int,
    seed: int,
) -> None:
    if not len(seeds) or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise ParameterError(f"seeds must be a list of integers (got {seeds!r}).")
    for name, value, least in (
        ("size", size, 16),
        ("centre", centre, 2),
        ("per_scene", per_scene, 0),
        ("per_change", per_change, 0),
        ("seed", seed, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ParameterError(f"{name} must be an integer of at least {least} (got {value!r}).")
    if centre > size:
        raise ParameterError(f"centre ({centre}) must not exceed size ({size}).")
    if world_size < 2 * size:
        raise ParameterError(f"world_size ({world_size}) must be at least twice size ({size}).")
