"""EuroSAT-like land-cover patches rendered like the sample scenes.

Each patch is cut from a small one-class world (see ``make_layout(theme=...)``) and
rendered with the scenes' renderer under a random date look, so that a classifier
trained on the patches can classify patches cut from sample scenes. Pixels are 0.5 m,
as in the scenes (EuroSAT's are 10 m; the classes and folder layout are EuroSAT's).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cdtools.errors import ParameterError
from cdtools.io.raster import atomic_path
from cdtools.landcover.classes import EUROSAT_CLASSES
from cdtools.synthetic.layout import make_layout
from cdtools.synthetic.looks import random_look
from cdtools.synthetic.noise import NoiseBank
from cdtools.synthetic.outputs import (
    forget_record,
    reusable,
    write_record,
)
from cdtools.synthetic.render import HALO, crop_layout, finish, make_texture, paint
from cdtools.synthetic.vehicles import park_vehicles

_FORMAT = 1
_RECORD = "patches.json"


def make_landcover_patches(
    out_dir: str | os.PathLike[str],
    *,
    n_per_class: int = 100,
    size: int = 64,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write RGB land-cover patches, one folder per EuroSAT class.

    The layout is EuroSAT's: ``out_dir/AnnualCrop/AnnualCrop_1.png`` ... numbered from 1
    to ``n_per_class`` in every class folder (class names as in ``EUROSAT_CLASSES``).
    The same arguments always give the same images.

    Args:
        out_dir: Folder to write into (created if needed).
        n_per_class: Patches per class.
        size: Width and height of a patch in pixels (0.5 m); 16 or more.
        seed: Seed of everything random.
        overwrite: Make the patches again when ``out_dir`` already holds some; when
            False, patches made there with the same arguments are reused (others raise).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        ParameterError: An argument cannot work.
        OutputExistsError: ``out_dir`` holds other patches (pass ``overwrite=True``).

    Example:
        >>> import tempfile
        >>> folder = make_landcover_patches(tempfile.mkdtemp(), n_per_class=2, size=32)
        >>> sorted(p.name for p in (folder / "Forest").glob("*.png"))
        ['Forest_1.png', 'Forest_2.png']
    """
    _check_arguments(n_per_class, size, seed)
    folder = Path(out_dir)
    n_per_class, size, seed = int(n_per_class), int(size), int(seed)
    arguments = {"format": _FORMAT, "n_per_class": n_per_class, "size": size, "seed": seed}
    if reusable(folder / _RECORD, arguments, overwrite, what="land-cover patches"):
        return folder
    forget_record(folder / _RECORD)
    from PIL import Image

    for code, name in enumerate(EUROSAT_CLASSES):
        for index in range(1, n_per_class + 1):
            rng = np.random.default_rng([seed, code, index])
            patch = render_patch(code, size, rng)
            with atomic_path(folder / name / f"{name}_{index}.png") as tmp:
                Image.fromarray(patch.transpose(1, 2, 0)).save(tmp, format="PNG")
    write_record(folder / _RECORD, arguments)
    return folder


def render_patch(code: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``(3, size, size)`` uint8 patch of land-cover class ``code``.

    Example:
        >>> render_patch(1, 64, np.random.default_rng(0)).shape
        (3, 64, 64)
    """
    canvas = 2 * size
    layout = park_vehicles(make_layout(canvas, rng, theme=code), rng)
    row, col = (canvas - size) // 2 + rng.integers(-size // 4, size // 4 + 1, size=2)
    span = (int(row) - HALO, int(col) - HALO, size + 2 * HALO, size + 2 * HALO)
    look = random_look(
        rng, date=int(rng.integers(0, 2)), shift=tuple(rng.uniform(-0.5, 0.5, size=2))
    )
    texture = make_texture(NoiseBank.draw(canvas, rng), *span, rng)
    image = paint(crop_layout(layout, *span), texture, look, bands=3)
    return finish(image[HALO : HALO + size, HALO : HALO + size], look, rng)


def _check_arguments(n_per_class: int, size: int, seed: int) -> None:
    for name, value, least in (
        ("n_per_class", n_per_class, 1),
        ("size", size, 16),
        ("seed", seed, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ParameterError(f"{name} must be an integer of at least {least} (got {value!r}).")
