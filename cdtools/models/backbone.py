"""Backbones: segmentation-models-pytorch encoders with ImageNet weights when they can be had.

ResNet weights are torchvision's files, listed with their checksums in data_manifest.yml
and looked for in the torch hub cache; other encoders use smp's own download. Data with
other than three bands keeps the pretraining: smp's ``set_in_channels`` repeats the RGB
filters of the first convolution over the bands and rescales them by 3 / bands.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from cdtools.errors import CdtoolsWarning, DataUnavailableError, ParameterError

log = logging.getLogger(__name__)

Pretrained = bool | Literal["auto"] | str | Path


def make_encoder(
    backbone: str,
    in_channels: int,
    *,
    pretrained: Pretrained = "auto",
    depth: int = 5,
    output_stride: int = 32,
) -> tuple[nn.Module, str]:
    """An smp encoder for ``in_channels`` bands, and where its weights came from.

    Args:
        backbone: an smp encoder name ("resnet18", "resnet34", "resnet50", "efficientnet-b0", ...).
        in_channels: bands of the imagery.
        pretrained: "auto" (ImageNet when cached or downloadable, else random after a
            warning), True (ImageNet or an error), False (random), or a weight file.
        depth: encoder stages (5 gives features down to 1/32).
        output_stride: 32, or 16 / 8 for a dilated encoder.

    Returns:
        ``(encoder, source)``, source being "imagenet:<file>", "file:<name>" or "random".

    Example:
        >>> encoder, source = make_encoder("resnet18", 4, pretrained=False)
        >>> encoder.out_channels
        [4, 64, 64, 128, 256, 512]
    """
    import segmentation_models_pytorch as smp

    if backbone not in smp.encoders.get_encoder_names() and not backbone.startswith("tu-"):
        known = ", ".join(
            n for n in smp.encoders.get_encoder_names() if "resnet" in n or "eff" in n
        )
        raise ParameterError(f"unknown backbone {backbone!r}; try one of {known}, ...")
    if pretrained not in (True, False, "auto") and not isinstance(pretrained, str | Path):
        raise ParameterError(
            f"pretrained must be 'auto', True, False or a path, got {pretrained!r}."
        )
    if isinstance(pretrained, str | Path) and pretrained != "auto":
        encoder = smp.encoders.get_encoder(backbone, in_channels=3, depth=depth, weights=None)
        _load_state(encoder, Path(pretrained))
        source = f"file:{Path(pretrained).name}"
    elif pretrained is False:
        encoder = smp.encoders.get_encoder(backbone, in_channels=3, depth=depth, weights=None)
        source = "random"
    else:
        encoder, source = _imagenet_encoder(backbone, depth, required=pretrained is True)
    encoder.set_in_channels(in_channels, pretrained=source != "random")
    if output_stride != 32:
        encoder.make_dilated(output_stride)
    return encoder, source


def _imagenet_encoder(backbone: str, depth: int, *, required: bool) -> tuple[nn.Module, str]:
    import segmentation_models_pytorch as smp

    from cdtools.io import manifest

    entry = f"{backbone}-imagenet"
    if entry in manifest.load_manifest()["entries"]:
        encoder = smp.encoders.get_encoder(backbone, in_channels=3, depth=depth, weights=None)
        try:
            file = manifest.fetch(entry)
        except DataUnavailableError as err:
            return _fallback(encoder, backbone, str(err), required=required)
        _load_state(encoder, file)
        return encoder, f"imagenet:{file.name}"
    try:  # encoders without a manifest entry: smp's own download and cache
        return smp.encoders.get_encoder(backbone, in_channels=3, depth=depth, weights="imagenet"), (
            "imagenet:smp"
        )
    except Exception as err:  # huggingface_hub raises many kinds of errors offline
        encoder = smp.encoders.get_encoder(backbone, in_channels=3, depth=depth, weights=None)
        reason = (
            f"segmentation-models-pytorch could not download ImageNet weights for {backbone} "
            f"({type(err).__name__}); run once where the internet is reachable to fill its cache"
        )
        return _fallback(encoder, backbone, reason, required=required)


def _fallback(
    encoder: nn.Module, backbone: str, reason: str, *, required: bool
) -> tuple[nn.Module, str]:
    if required:
        raise DataUnavailableError(
            f"pretrained=True but no ImageNet weights for {backbone}: {reason}"
        )
    warnings.warn(
        f"training {backbone} from random initialisation: {reason}. "
        "Pass pretrained=False to silence this.",
        CdtoolsWarning,
        stacklevel=4,
    )
    return encoder, "random"


def _load_state(encoder: nn.Module, file: Path) -> None:
    """Load a weight file without unpickling code: safetensors, or torch's weights_only."""
    if not file.is_file():
        raise DataUnavailableError(f"pretrained weight file {file} does not exist.")
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(file)
    else:
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle errors of many kinds
            raise DataUnavailableError(f"{file.name} is not a plain weight file ({err}).") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier."))}
    # nn.Module's own method: smp encoders override load_state_dict and return nothing.
    missing, unexpected = nn.Module.load_state_dict(encoder, state, strict=False)
    if missing or unexpected:
        raise ParameterError(
            f"{file.name} does not fit this backbone: {len(missing)} weights missing "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})."
        )
    log.info("loaded backbone weights from %s", file)


# torchvision ResNet children kept in fastai's body (vision_learner's cut=-2), by index.
_FASTAI_BODY = {
    "conv1": "0",
    "bn1": "1",
    "layer1": "4",
    "layer2": "5",
    "layer3": "6",
    "layer4": "7",
}


def load_resnet_body(body: nn.Module, backbone: str, *, pretrained: Pretrained = "auto") -> str:
    """Load ImageNet (or file) weights into the body of a fastai ``vision_learner`` ResNet.

    The weights are found, checked and, when missing, warned about exactly as for the
    change models (:func:`make_encoder`); smp's ResNet encoders are torchvision ResNets,
    so their layers map onto fastai's body by name.

    Args:
        body: ``learn.model[0]`` of a ``vision_learner`` on a torchvision ResNet (3 bands).
        backbone: "resnet18", "resnet34", "resnet50", ...
        pretrained: "auto", True, False or a weight file (see :func:`make_encoder`).

    Returns:
        Where the weights came from: "imagenet:<file>", "file:<name>" or "random".

    Example:
        >>> from torchvision.models import resnet18
        >>> body = nn.Sequential(*list(resnet18().children())[:-2])
        >>> load_resnet_body(body, "resnet18", pretrained=False)
        'random'
    """
    if pretrained is False:
        return "random"
    encoder, source = make_encoder(backbone, 3, pretrained=pretrained)
    if source == "random":
        return source
    state = {}
    for key, value in encoder.state_dict().items():
        head, _, rest = key.partition(".")
        if head in _FASTAI_BODY:
            state[f"{_FASTAI_BODY[head]}.{rest}"] = value
    body.load_state_dict(state)
    log.info("fastai %s body weights from %s", backbone, source)
    return source


def check_from_scratch(name: str, pretrained: Pretrained) -> str:
    """The weights source of a network that has no pretrained weights: "random" when
    ``pretrained`` is False or "auto", else a :class:`ParameterError` naming ``name``."""
    if pretrained not in (False, "auto"):
        raise ParameterError(
            f"{name} is trained from scratch and cannot load pretrained={pretrained!r}; "
            "pass pretrained=False."
        )
    return "random"
