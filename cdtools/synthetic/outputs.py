"""Output folders of the sample world: reuse what the same arguments made, refuse the rest.

Each maker writes a small JSON record of its arguments last (atomically), so a folder
with the record is complete, and a later call with the same arguments can reuse it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cdtools.errors import OutputExistsError
from cdtools.io.raster import atomic_path


def reusable(record: Path, arguments: dict[str, Any], overwrite: bool, *, what: str) -> bool:
    """True when ``record`` shows the folder holds ``what`` made with ``arguments``.

    Raises :class:`OutputExistsError` when it holds ``what`` made with other arguments
    (unless ``overwrite``); False when there is nothing complete to reuse, or
    ``overwrite`` is true.
    """
    if not record.exists() or overwrite:
        return False
    folder = record.parent
    previous = json.loads(record.read_text())
    made_with = {key: previous.get(key) for key in arguments}
    if made_with != arguments:
        raise OutputExistsError(
            f"{folder} holds {what} made with other arguments ({made_with}); "
            "pass overwrite=True or another folder."
        )
    return True


def forget_record(record: Path) -> None:
    """Remove the record before (re)writing, so a half-rewritten folder is never reused."""
    record.unlink(missing_ok=True)


def write_record(record: Path, content: dict[str, Any]) -> None:
    """Write the record (last, atomically: its presence means the folder is complete)."""
    with atomic_path(record) as tmp:
        tmp.write_text(json.dumps(content, indent=2) + "\n")
