from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
import yaml

from cdtools.errors import CdtoolsWarning, DataUnavailableError, ParameterError
from cdtools.models import ARCHITECTURES
from cdtools.models.backbone import make_encoder


@pytest.mark.parametrize(
    ("arch", "options"),
    [
        ("siamese_unet", {}),
        ("siamese_unet", {"fusion": "concat"}),
        ("stanet", {"attention_type": "PAM"}),
        ("stanet", {"attention_type": "BAM"}),
        ("bit", {}),
        ("fc_ef", {}),
        ("fc_siam_conc", {}),
        ("fc_siam_diff", {}),
        ("tinycd", {}),
        ("tinycd", {"backbone": "resnet18"}),
    ],
)
@pytest.mark.parametrize("bands", [3, 6])
def test_every_architecture_maps_a_pair_to_one_channel(
    arch: str, options: dict, bands: int
) -> None:
    model = ARCHITECTURES[arch](bands, pretrained=False, **options).eval()
    before, after = torch.randn(2, bands, 64, 64), torch.randn(2, bands, 64, 64)
    with torch.no_grad():
        out = model((before, after))
        same = model((before, before))
    assert out.shape == (2, 1, 64, 64) and torch.isfinite(out).all()
    if model.output == "distance":  # identical dates are at distance 0
        assert torch.allclose(same, torch.zeros_like(same), atol=1e-5)


def test_siamese_diff_fusion_ignores_the_order_of_dates() -> None:
    model = ARCHITECTURES["siamese_unet"](3, pretrained=False).eval()
    a, b = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model((a, b)), model((b, a)), atol=1e-5)


@pytest.fixture
def resnet18_file(tmp_path: Path) -> Path:
    """A torchvision-format resnet18 weight file with recognisable (random) weights."""
    torch.manual_seed(0)
    state = torchvision.models.resnet18(weights=None).state_dict()
    file = tmp_path / "resnet18-test.pth"
    torch.save(state, file)
    return file


def test_weight_file_is_loaded_and_first_conv_adapted_to_more_bands(resnet18_file: Path) -> None:
    rgb = torch.load(resnet18_file, weights_only=True)["conv1.weight"]
    encoder, source = make_encoder("resnet18", 5, pretrained=resnet18_file)
    assert source == "file:resnet18-test.pth"
    conv = encoder.conv1.weight.detach()
    assert conv.shape == (64, 5, 7, 7)
    for band in range(5):  # RGB filters repeated over the bands, rescaled by 3 / 5
        assert torch.allclose(conv[:, band], rgb[:, band % 3] * 3 / 5)
    assert torch.allclose(
        encoder.layer1[0].conv1.weight,
        torch.load(resnet18_file, weights_only=True)["layer1.0.conv1.weight"],
    )


def _resnet18_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **changes: object) -> None:
    """Point cdtools at a copy of the manifest whose resnet18 file is changed, and at
    empty caches under tmp_path."""
    from cdtools.io import manifest

    data = manifest.load_manifest()
    data["entries"]["resnet18-imagenet"]["files"][0].update(changes)
    copy = tmp_path / "manifest.yml"
    copy.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("CDTOOLS_MANIFEST", str(copy))
    monkeypatch.setenv("CDTOOLS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch" / "hub"))


def test_auto_without_weights_warns_and_trains_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 9 on this machine refuses connections: the download fails at once, as offline.
    _resnet18_entry(tmp_path, monkeypatch, url="http://127.0.0.1:9/resnet18-f37072fd.pth")
    with pytest.warns(CdtoolsWarning, match=r"random initialisation.*resnet18-f37072fd\.pth"):
        _, source = make_encoder("resnet18", 3, pretrained="auto")
    assert source == "random"
    with pytest.raises(DataUnavailableError, match="pretrained=True"):
        make_encoder("resnet18", 3, pretrained=True)


def test_auto_loads_cached_imagenet_weights(
    resnet18_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = hashlib.sha256(resnet18_file.read_bytes()).hexdigest()
    name = f"resnet18-{digest[:8]}.pth"
    _resnet18_entry(
        tmp_path,
        monkeypatch,
        name=name,
        checksum=f"sha256:{digest}",
        size=None,
        sha256_prefix=digest[:8],
    )
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / name).write_bytes(resnet18_file.read_bytes())
    encoder, source = make_encoder("resnet18", 3, pretrained="auto")
    assert source == f"imagenet:{name}"
    assert torch.equal(
        encoder.conv1.weight, torch.load(resnet18_file, weights_only=True)["conv1.weight"]
    )


def test_bad_backbone_and_weight_file(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="unknown backbone"):
        make_encoder("resnet19", 3, pretrained=False)
    other = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), other)
    with pytest.raises(ParameterError, match="does not fit this backbone"):
        make_encoder("resnet18", 3, pretrained=other)


@pytest.mark.parametrize(
    "arch", ["siamese_unet", "stanet", "bit", "fc_ef", "fc_siam_conc", "fc_siam_diff", "tinycd"]
)
def test_each_architecture_learns_a_few_steps(arch: str) -> None:
    from cdtools.learn.losses import BatchBalancedContrastiveLoss, BCEDiceLoss

    torch.manual_seed(0)
    model = ARCHITECTURES[arch](3, pretrained=False)
    loss_fn = BatchBalancedContrastiveLoss() if model.output == "distance" else BCEDiceLoss()
    before = torch.randn(4, 3, 64, 64)
    after = before.clone()
    target = torch.zeros(4, 64, 64, dtype=torch.long)
    target[:, 16:40, 20:44] = 1
    after[:, :, 16:40, 20:44] += 3.0  # something new and bright
    lr = 1e-2 if arch == "tinycd" else 1e-3  # tiny and instance-normalised: wants more
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(8):
        loss = loss_fn(model((before, after)), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_auto_downloads_served_weights_checks_them_and_loads_them(
    resnet18_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_manifest import Server

    blob = resnet18_file.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    name = f"resnet18-{digest[:8]}.pth"
    server = Server({f"/models/{name}": blob})
    server.thread.start()
    try:
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
            monkeypatch.delenv(var, raising=False)
        _resnet18_entry(
            tmp_path, monkeypatch, name=name, url=server.url(f"/models/{name}"),
            checksum=f"sha256:{digest}", size=len(blob), sha256_prefix=digest[:8],
        )  # fmt: skip
        encoder, source = make_encoder("resnet18", 4, pretrained="auto")
        assert source == f"imagenet:{name}" and server.hits[f"/models/{name}"] == 1
        assert (tmp_path / "torch" / "hub" / "checkpoints" / name).is_file()
        expected = torch.load(resnet18_file, weights_only=True)["layer4.1.conv2.weight"]
        assert torch.equal(encoder.layer4[1].conv2.weight, expected)
        make_encoder("resnet18", 3, pretrained=True)  # cached now: no second download
        assert server.hits[f"/models/{name}"] == 1
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.mark.parametrize(("backbone", "largest"), [("efficientnet-b4", 300_000), ("resnet18", 1e6)])
def test_tinycd_is_tiny_and_trains_its_encoder(backbone: str, largest: float) -> None:
    model = ARCHITECTURES["tinycd"](3, backbone=backbone, pretrained=False)
    assert sum(p.numel() for p in model.parameters()) < largest  # paper: 0.28 M with B4
    assert model.weights_source == "random"
    before, after = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    model((before, after)).mean().backward()
    encoder = model.encoder_parameters()
    assert encoder and all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder[:3])


def test_tinycd_takes_any_size_from_16_pixels() -> None:
    model = ARCHITECTURES["tinycd"](4, pretrained="auto")
    for height, width in ((16, 16), (100, 76), (33, 47)):
        x = torch.randn(2, 4, height, width)
        assert model((x, x.flip(0))).shape == (2, 1, height, width)


def test_tinycd_refuses_pretrained_weights_and_unknown_backbones(tmp_path: Path) -> None:
    tinycd = ARCHITECTURES["tinycd"]
    for pretrained in (True, tmp_path / "weights.safetensors", "weights.pth"):
        with pytest.raises(ParameterError, match="trained from scratch"):
            tinycd(3, pretrained=pretrained)
    with pytest.raises(ParameterError, match="efficientnet-b4"):
        tinycd(3, backbone="vgg16")


def test_tinycd_package_round_trip_and_predict_scene(tmp_path: Path) -> None:
    from cdtools.chips.data import prepare_data
    from cdtools.chips.export import export_training_data
    from cdtools.io.pair import load_pair
    from cdtools.learn.detector import ChangeDetector
    from cdtools.scene.predict import predict_scene
    from tests.conftest import make_pair

    pair = make_pair(tmp_path / "scene", height=128, width=128, square=(30, 70, 40, 90))
    chips = export_training_data(
        pair.before, pair.after, pair.polygons, tmp_path / "chips",
        chip_size=64, stride=32, progress=False,
    )  # fmt: skip
    dls = prepare_data(chips, chip_size=64, batch_size=4, val_split_pct=0.25, seed=0)
    torch.manual_seed(0)
    detector = ChangeDetector(dls, arch="tinycd", backbone="efficientnet-b4", pretrained=False)
    detector.fit(1, lr=1e-2)
    folder = detector.save(tmp_path / "model")
    loaded = ChangeDetector.from_model(folder)
    assert loaded.spec.arch == "tinycd" and loaded.spec.backbone == "efficientnet-b4"
    x = np.random.default_rng(0).integers(0, 255, (3, 96, 80)).astype(np.uint8)
    y = x.copy()
    y[:, 20:50, 20:50] = 255
    np.testing.assert_allclose(loaded.predict(x, y).values, detector.predict(x, y).values)
    scene = load_pair(pair.before, pair.after)
    change = predict_scene(folder, scene, tile=64, overlap=16, precision="fp32").compute()
    assert change.shape == (128, 128) and change.dtype == np.uint8
    assert change.rio.crs == scene.rio.crs


def test_the_arch_type_names_every_registered_architecture() -> None:
    from typing import get_args

    from cdtools.models import Arch

    assert set(get_args(Arch)) == set(ARCHITECTURES)
