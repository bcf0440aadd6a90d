"""The FC family (Daudt et al. 2018) and bf16 training on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cdtools.errors import ParameterError
from cdtools.models import ARCHITECTURES

# Parameter counts of the paper's networks (1.35 M, 1.55 M, 1.35 M for RGB pairs).
PAPER_PARAMETERS = {"fc_ef": 1_350_433, "fc_siam_conc": 1_545_841, "fc_siam_diff": 1_350_001}


@pytest.mark.parametrize("arch", sorted(PAPER_PARAMETERS))
def test_fc_networks_have_the_papers_size_and_take_any_image_size(arch: str) -> None:
    model = ARCHITECTURES[arch](3).eval()
    assert sum(p.numel() for p in model.parameters()) == PAPER_PARAMETERS[arch]
    assert model.weights_source == "random"
    for height, width in ((16, 16), (100, 77), (64, 48)):
        x = torch.randn(1, 3, height, width)
        with torch.no_grad():
            assert model((x, x)).shape == (1, 1, height, width)


def test_fc_width_doubles_every_level() -> None:
    wide = ARCHITECTURES["fc_siam_conc"](3, width=32).eval()
    # every convolution has twice the inputs and outputs, so about four times the weights
    assert 3.9 < sum(p.numel() for p in wide.parameters()) / PAPER_PARAMETERS["fc_siam_conc"] < 4
    assert [block[0].out_channels for block in wide.encoder] == [32, 64, 128, 256]
    x = torch.randn(1, 3, 40, 24)
    with torch.no_grad():
        assert wide((x, x)).shape == (1, 1, 40, 24)
    with pytest.raises(ParameterError, match="width must be at least 1"):
        ARCHITECTURES["fc_ef"](3, width=0)


def test_fc_siam_diff_skips_see_no_change_for_identical_dates() -> None:
    model = ARCHITECTURES["fc_siam_diff"](3).eval()
    seen = []
    model.decoder[-1].register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        model((x, x))
    skip = seen[0][:, 16:]  # the level-1 skip: |after - before| of the shared encoder
    assert torch.count_nonzero(skip) == 0


def test_fc_networks_refuse_pretrained_weights_and_backbones() -> None:
    with pytest.raises(ParameterError, match="trained from scratch"):
        ARCHITECTURES["fc_siam_diff"](3, pretrained=True)
    with pytest.raises(ParameterError, match="takes no backbone"):
        ARCHITECTURES["fc_ef"](3, backbone="resnet18")


def test_fc_siam_diff_package_round_trip(tmp_path: Path, tiny_chips: Path) -> None:
    from cdtools.chips.data import prepare_data
    from cdtools.learn.detector import ChangeDetector

    dls = prepare_data(tiny_chips, chip_size=64, batch_size=4, val_split_pct=0.25, seed=0)
    torch.manual_seed(0)
    detector = ChangeDetector(dls, arch="fc_siam_diff", pretrained=False)
    with detector.learn.no_bar(), detector.learn.no_logging():
        detector.fit(1, lr=1e-3, checkpoint=False)
    path = detector.save(tmp_path / "fc", overwrite=True)
    again = ChangeDetector.from_model(path)
    x = torch.randn(1, dls.n_bands, 64, 64)
    detector.model.eval()
    with torch.no_grad():
        assert torch.equal(detector.model((x, x * 0.5)), again.model((x, x * 0.5)))


def test_bf16_training_learns_and_leaves_an_fp32_model(tiny_chips: Path) -> None:
    from cdtools.chips.data import prepare_data
    from cdtools.learn.detector import ChangeDetector

    dls = prepare_data(tiny_chips, chip_size=64, batch_size=4, val_split_pct=0.25, seed=0)
    torch.manual_seed(0)
    detector = ChangeDetector(dls, arch="fc_siam_diff", pretrained=False)
    before = {k: v.clone() for k, v in detector.model.state_dict().items()}
    with detector.learn.no_bar(), detector.learn.no_logging():
        detector.fit(2, lr=1e-3, checkpoint=False, precision="bf16")
    state = detector.model.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in state.items())
    assert not torch.equal(state["head.weight"], before["head.weight"])
    conv = detector.model.head.weight
    assert conv.is_contiguous()  # channels-last only while training
    assert detector.spec.training["last_fit"]["precision"] == "bf16"
    losses = [float(v) for v in detector.learn.recorder.losses]
    assert all(torch.isfinite(torch.tensor(losses)))


def test_weight_averaging_keeps_the_best_average(tiny_chips: Path) -> None:
    from cdtools.chips.data import prepare_data
    from cdtools.learn.detector import ChangeDetector

    dls = prepare_data(tiny_chips, chip_size=64, batch_size=4, val_split_pct=0.25, seed=0)
    torch.manual_seed(0)
    detector = ChangeDetector(dls, arch="fc_siam_conc", pretrained=False)
    with detector.learn.no_bar(), detector.learn.no_logging():
        detector.fit(3, lr=1e-3, precision="fp32", average=True)
        # Every epoch was validated on the average, and the checkpoint kept the best of them.
        best = min(v[1] for v in detector.learn.recorder.values)
        valid_loss = detector.learn.validate()[0]  # (this resets the recorder)
    assert valid_loss == pytest.approx(best, rel=1e-4)
    assert detector.spec.training["last_fit"]["average"] is True


def test_fp16_training_on_a_cpu_is_refused(tiny_chips: Path) -> None:
    from cdtools.chips.data import prepare_data
    from cdtools.learn.detector import ChangeDetector

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: fp16 training is allowed")
    dls = prepare_data(tiny_chips, chip_size=64, batch_size=4, val_split_pct=0.25, seed=0)
    detector = ChangeDetector(dls, arch="fc_siam_diff", pretrained=False)
    with pytest.raises(ParameterError, match="GPU"):
        detector.fit(1, lr=1e-3, precision="fp16")
    with pytest.raises(ParameterError, match="precision must be"):
        detector.fit(1, lr=1e-3, precision="int8")  # type: ignore[arg-type]


def test_tune_threshold_without_validation_chips_says_how_to_get_them(tiny_chips: Path) -> None:
    from cdtools.chips.data import prepare_data
    from cdtools.learn.detector import ChangeDetector

    dls = prepare_data(tiny_chips, chip_size=64, batch_size=4, val_split_pct=0.0)
    detector = ChangeDetector(dls, arch="fc_siam_diff", pretrained=False)
    with pytest.raises(ParameterError, match="val_split_pct > 0"):
        detector.tune_threshold()
    assert detector.threshold == 0.5  # untouched
