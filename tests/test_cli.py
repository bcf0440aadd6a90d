from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio

from cdtools.cli import main
from tests.conftest import Pair


def test_export_train_predict_from_the_command_line(
    pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chips = tmp_path / "chips"
    args = [str(pair.before), str(pair.after), str(pair.polygons), str(chips)]
    assert main(["export", *args, "--tile-size", "64", "--stride", "64"]) == 0
    assert json.loads((chips / "export.json").read_text())["counts"]["chips"] == 5 * 4
    model = tmp_path / "model"
    assert (
        main(
            [
                "train",
                str(chips),
                "--pretrained",
                "false",
                "--epochs",
                "1",
                "--lr",
                "1e-3",
                "--chip-size",
                "64",
                "--batch-size",
                "4",
                "--out",
                str(model),
            ]
        )
        == 0
    )
    assert (model / "model.json").exists()
    out = tmp_path / "change.tif"
    assert (
        main(
            [
                "predict",
                str(pair.before),
                str(pair.after),
                "--model",
                str(model),
                "--out",
                str(out),
                "--mask",
            ]
        )
        == 0
    )
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32614 and src.shape == (300, 200)
        assert set(src.read(1).ravel().tolist()) <= {0, 1}


def test_user_errors_are_one_line_with_exit_status_2(
    pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(pair.before), str(pair.after), str(pair.polygons), str(tmp_path / "c")]
    assert main(["export", *args, "--stride", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cdtools: error: stride must be a positive") and "\n" not in err
