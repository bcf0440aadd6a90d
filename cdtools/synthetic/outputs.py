"""Output folders of the sample world: reuse what the same arguments made, refuse the rest.

Each maker writes a small JSON record of its arguments last (atomically), so a folder
with the record is complete, and a later call with the same arguments can reuse it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from cdtools.errors import OutputExistsError, ParameterError
from cdtools.io.raster import atomic_path

IfExists = Literal["reuse", "overwrite", "error"]


def check_if_exists(if_exists: str) -> None:
    """Raise :class:`ParameterError` unless ``if_exists`` is one of :data:`IfExists`."""
    if if_exists not in ("reuse", "overwrite", "error"):
        raise ParameterError(
            f"if_exists must be 'reuse', 'overwrite' or 'error' (got {if_exists!r})."
        )


def reusable(record: Path, arguments: dict[str, Any], if_exists: str, *, what: str) -> bool:
    """True when ``record`` shows the folder holds ``what`` made with ``arguments``.

    Raises :class:`OutputExistsError` when it holds ``what`` made otherwise (or at all,
    with ``if_exists="error"``); False when there is nothing complete to reuse, or
    ``if_exists="overwrite"``.
    """
    if not record.exists() or if_exists == "overwrite":
        return False
    folder = record.parent
    if if_exists == "error":
        raise OutputExistsError(
            f"{folder} already holds {what}; pass if_exists='overwrite' or another folder."
        )
    previous = json.loads(record.read_text())
    made_with = {key: previous.get(key) for key in arguments}
    if made_with != arguments:
        raise OutputExistsError(
            f"{folder} holds {what} made with other arguments ({made_with}); "
            "pass if_exists='overwrite' or another folder."
        )
    return True


def forget_record(record: Path) -> None:
    """Remove the record before (re)writing, so a half-rewritten folder is never reused."""
    record.unlink(missing_ok=True)


def write_record(record: Path, content: dict[str, Any]) -> None:
    """Write the record (last, atomically: its presence means the folder is complete)."""
    with atomic_path(record) as tmp:
        tmp.write_text(json.dumps(content, indent=2) + "\n")
