"""One learner facade: ChangeDetector and LandCoverClassifier share their training verbs."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch

from cdtools.errors import CdtoolsError, ParameterError
from cdtools.landcover.classifier import LandCoverClassifier
from cdtools.landcover.data import prepare_landcover_data
from cdtools.learn.detector import ChangeDetector
from cdtools.learn.trainable import Trainable
from tests.conftest import write_easy_patches

SHARED = ("lr_find", "fit", "freeze", "unfreeze", "plot_losses", "save", "from_model")


@pytest.mark.parametrize("verb", SHARED)
def test_both_facades_have_each_verb_once_with_one_signature(verb: str) -> None:
    for facade in (ChangeDetector, LandCoverClassifier):
        assert issubclass(facade, Trainable)
        assert verb not in vars(facade), f"{facade.__name__} writes {verb} again"
    assert inspect.signature(getattr(ChangeDetector, verb)) == inspect.signature(
        getattr(LandCoverClassifier, verb)
    )


def test_from_model_takes_data_by_keyword_only() -> None:
    data = inspect.signature(ChangeDetector.from_model).parameters["data"]
    assert data.kind is inspect.Parameter.KEYWORD_ONLY


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> LandCoverClassifier:
    folder = write_easy_patches(tmp_path_factory.mktemp("trainable") / "patches", n=8)
    dls = prepare_landcover_data(folder, size=32, batch_size=8, val_split_pct=0.25, seed=0)
    torch.manual_seed(0)
    return LandCoverClassifier(dls, pretrained=False)


def test_the_classifier_trains_with_the_detectors_options(
    classifier: LandCoverClassifier, tmp_path: Path
) -> None:
    assert classifier._lr is None  # made in the constructor, not on first lr_find
    with classifier.learn.no_bar(), classifier.learn.no_logging():
        classifier.fit(2, lr=3e-3, checkpoint=True, monitor="accuracy", precision="bf16")
    last = classifier.spec.training["last_fit"]
    assert last == {"epochs": 2, "lr": 3e-3, "one_cycle": True, "precision": "bf16",
                    "average": False}  # fmt: skip
    with pytest.raises(ParameterError, match="monitor must be"):
        classifier.fit(1, monitor="f1")
    with pytest.raises(ParameterError, match="GPU only"):
        classifier.fit(1, precision="fp16")
    package = classifier.save(tmp_path / "model")
    loaded = LandCoverClassifier.from_model(package)
    with pytest.raises(CdtoolsError, match=r"from_model\(path, data=prepare_landcover_data"):
        loaded.fit(1)


def test_a_fit_written_to_a_file_logs_one_line_per_epoch(
    classifier: LandCoverClassifier, capsys: pytest.CaptureFixture
) -> None:
    """Output that is not a terminal (pytest's capture, a log file) gets no progress bar,
    only a header and one aligned line per epoch."""
    classifier.fit(2, lr=3e-3, checkpoint=False, precision="fp32")
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    assert [line.split()[0] for line in lines[1:]] == ["0", "1"]
    assert all(len(line.split()) == 5 for line in lines)
    assert "\r" not in captured.out + captured.err and "Epoch 1/2" not in captured.err
    assert classifier.learn.logger is print and hasattr(classifier.learn, "progress")
