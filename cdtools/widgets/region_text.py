"""What panels say about a region: its land cover before and after, when known."""

from __future__ import annotations

import html
import math
import numbers
from typing import Any

from cdtools.errors import ParameterError

CLASSES = ("class_before", "class_after")
CONFIDENCES = ("confidence_before", "confidence_after")


def class_lookup(table: Any, optional: bool) -> dict[int, dict[str, Any]]:
    """Class before and after (and confidences, when there) by region id."""
    missing = [c for c in ("id", *CLASSES) if c not in table.columns]
    if missing:
        if optional:  # a regions table without classes
            return {}
        raise ParameterError(
            f"classes has no column {', '.join(missing)}; pass the table classify_patches "
            "returns (id, class_before, confidence_before, class_after, confidence_after)."
        )
    columns = [c for c in (*CLASSES, *CONFIDENCES) if c in table.columns]
    rows = table.drop_duplicates("id").set_index("id")[columns]
    return {int(i): row for i, row in rows.to_dict("index").items()}


def transition_text(found: dict[str, Any]) -> str:
    """Forest → Residential (confidence 0.91 → 0.87); "no data" for a date without class."""
    names = [_name(found[c]) for c in CLASSES]
    line = html.escape(f"{names[0]} → {names[1]}")
    confidences = [found.get(c) for c in CONFIDENCES]
    if all(isinstance(c, numbers.Real) and math.isfinite(c) for c in confidences):
        line += f" (confidence {confidences[0]:.2f} → {confidences[1]:.2f})"
    return line


def _name(value: Any) -> str:
    missing = value is None or (isinstance(value, numbers.Real) and math.isnan(value))
    return "no data" if missing else str(value)
