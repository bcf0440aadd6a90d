"""The public API keeps DESIGN.md's conventions: data first, options keyword-only after ``*``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

import cdtools
from cdtools.chips.data import ChangeDataLoaders
from cdtools.landcover.data import LandCoverDataLoaders
from cdtools.learn.trainable import Trainable

#: Options that may come positionally: how many rows of examples a grid shows.
POSITIONAL_OPTIONS = {"show_batch": {"rows"}, "show_results": {"rows"}}


def public_callables() -> Iterator[tuple[str, Callable]]:
    """Every verb of ``cdtools.__all__`` and the public methods cdtools defines on its
    classes (the learners, their base and their DataLoaders included)."""
    classes = [ChangeDataLoaders, LandCoverDataLoaders, Trainable]
    for name in sorted(cdtools._EXPORTS):
        obj = getattr(cdtools, name)
        if inspect.isclass(obj):
            classes.append(obj)
        elif callable(obj):
            yield name, obj
    for cls in classes:
        yield cls.__name__, cls.__init__
        for name, member in inspect.getmembers(cls):
            module = getattr(member, "__module__", None) or ""
            if name.startswith("_") or inspect.isclass(member) or not callable(member):
                continue
            if module.startswith("cdtools."):
                yield f"{cls.__name__}.{name}", member


def test_options_are_keyword_only() -> None:
    loose = []
    for name, function in public_callables():
        allowed = POSITIONAL_OPTIONS.get(name.rsplit(".", 1)[-1], set())
        for parameter in inspect.signature(function).parameters.values():
            if (
                parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
                and parameter.default is not inspect.Parameter.empty
                and parameter.name not in allowed
            ):
                loose.append(f"{name}({parameter.name}=)")
    assert not loose, f"options that are not keyword-only: {loose}"


def test_the_check_sees_the_learners_and_the_verbs() -> None:
    names = {name for name, _ in public_callables()}
    assert {"export_training_data", "ChangeDetector.fit", "LandCoverClassifier.fine_tune"} <= names
    assert {"ChangeDataLoaders.show_batch", "LandCoverClassifier.show_results"} <= names
