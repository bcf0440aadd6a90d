"""The change model as scene inference uses it: shipped to dask workers, built once each.

A :class:`SceneModel` is a model package held in memory (model.json and safetensors
bytes), small to pickle and cheap to tokenise. Each process builds the torch model from
it once, folds BatchNorm into the convolutions, and runs one forward pass at a time, so
torch gets all the cores while other dask threads read and warp.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cdtools.chips.coarsen import coarsen_image
from cdtools.errors import ParameterError
from cdtools.learn.package import ModelSpec, read_package_bytes
from cdtools.learn.precision import Precision, resolve_precision

# Per process: models built so far (a worker loads each model once) and one lock so that
# a single forward pass at a time uses all cores while other threads read and warp.
_MODELS: dict[tuple[str, str, str], Any] = {}
_MODELS_LOCK = threading.Lock()
_FORWARD_LOCK = threading.Lock()
LOADS: Counter[str] = Counter()


@dataclass(frozen=True)
class SceneModel:
    """A model package in memory (model.json and safetensors bytes) that dask can ship.

    Workers receive it once and build the torch model once per process (see :meth:`module`).
    """

    spec_json: dict[str, Any]
    weights: bytes
    token: str

    @classmethod
    def of(cls, model: Any) -> SceneModel:
        """From a :class:`~cdtools.ChangeDetector`, a package path, or a SceneModel."""
        if isinstance(model, SceneModel):
            return model
        from safetensors.torch import save

        if isinstance(model, str | Path):
            spec, weights = read_package_bytes(model)  # the file's bytes, not decoded
        elif hasattr(model, "spec") and hasattr(model, "model"):
            spec, state = model.spec, model.model.state_dict()
            weights = save({k: v.detach().cpu().contiguous() for k, v in state.items()})
        else:
            raise ParameterError(
                "model must be a ChangeDetector or a model package path, "
                f"not {type(model).__name__}."
            )
        # what builds the module too: the same weights in another architecture are another model
        built = [spec.arch, spec.backbone, spec.in_channels, spec.arch_kwargs, spec.downsample]
        described = json.dumps(built, sort_keys=True, default=str).encode()
        token = hashlib.sha256(weights + described).hexdigest()[:16]
        return cls(spec.to_json(), weights, token)

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec.from_json(self.spec_json)

    def module(self, device: str | None, precision: Precision) -> tuple[Any, str, str]:
        """(torch model, device, precision) built once per process and reused."""
        import torch

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        precision = resolve_precision(precision, device)
        key = (self.token, device, precision)
        with _MODELS_LOCK:
            if key not in _MODELS:
                _MODELS[key] = self._build(device)
                LOADS[self.token] += 1
        return _MODELS[key], device, precision

    def session(self, runtime: str, precision: Precision, *, tile: int) -> Any:
        """This model exported to ONNX and opened in ``runtime`` on the CPU, once per
        process (:func:`cdtools.scene.runtime.exported_session`)."""
        from cdtools.scene.runtime import exported_session

        model, _, precision = self.module("cpu", precision)
        precision = precision if runtime == "openvino" else "fp32"
        key = (self.token, f"{runtime}-{tile}", precision)
        with _MODELS_LOCK:
            if key not in _MODELS:
                _MODELS[key] = exported_session(model, self.spec, runtime, precision, tile)
                LOADS[self.token] += 1
        return _MODELS[key]

    def _build(self, device: str) -> Any:
        import torch

        spec = self.spec
        model = _with_weights(spec, self.weights).eval()
        model = _fold_batch_norms(model, spec.in_channels)
        return model.to(device).to(memory_format=torch.channels_last)

    def __dask_tokenize__(self) -> tuple[str, str]:
        return ("cdtools-scene-model", self.token)

    def shipped(self) -> Any:
        """This model as one dask graph input: sent to every worker once when a cluster is
        active, else a delayed value of the graph."""
        import dask

        from cdtools.io.cog import active_client

        client = active_client()
        if client is None:
            return dask.delayed(self, pure=True)
        return client.scatter(self, broadcast=True, hash=True)

    def predict(
        self,
        before: np.ndarray,
        after: np.ndarray,
        *,
        device: str | None,
        precision: Precision,
        tta: bool = False,
        runtime: str = "torch",
    ) -> np.ndarray:
        """Change probability ``(n, h, w)`` of normalised ``(n, c, h, w)`` batches; with
        ``tta``, the mean over the 8 flips and quarter turns of each (square) tile; run by
        torch, or by another ``runtime`` (:mod:`cdtools.scene.runtime`) on the CPU. A
        model trained with ``downsample`` > 1 sees the batches coarsened the same way, and
        its probability comes back to their grid (bilinear)."""
        factor = self.spec_json.get("downsample", 1)  # per batch: no parsing of the spec
        if factor == 1:
            return self._predict(before, after, device, precision, tta, runtime)
        height, width = before.shape[-2:]
        coarse = [coarsen_image(x, factor) for x in (before, after)]
        size = coarse[0].shape[-2:]
        prob = self._predict(
            *(_to_multiple(x, 32) for x in coarse), device, precision, tta, runtime
        )
        return _resized(prob[:, : size[0], : size[1]], (height, width))

    def _predict(
        self,
        before: np.ndarray,
        after: np.ndarray,
        device: str | None,
        precision: Precision,
        tta: bool,
        runtime: str,
    ) -> np.ndarray:
        import torch

        from cdtools.learn.tta import check_tta_model, dihedral_mean
        from cdtools.models import to_probability

        if runtime != "torch":
            session = self.session(runtime, precision, tile=before.shape[-1])
            with _FORWARD_LOCK:
                return session(before, after)
        model, device, precision = self.module(device, precision)
        if tta:
            check_tta_model(model)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

        def forward(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
            # a flipped or turned tensor has other strides: channels-last again for the convs
            pair = tuple(x.contiguous(memory_format=torch.channels_last) for x in (before, after))
            with torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
                raw = model(pair)
            return to_probability(model, raw.float())[:, 0]

        with _FORWARD_LOCK, torch.inference_mode():
            pair = tuple(torch.from_numpy(x).to(device) for x in (before, after))
            prob = dihedral_mean(forward, *pair) if tta else forward(*pair)
            return prob.cpu().numpy()


def _to_multiple(batch: np.ndarray, multiple: int) -> np.ndarray:
    """``(n, c, h, w)`` mirrored at its bottom and right edges up to a multiple of ``multiple``."""
    pad = [(-side) % multiple for side in batch.shape[-2:]]
    if not any(pad):
        return batch
    return np.pad(batch, ((0, 0), (0, 0), (0, pad[0]), (0, pad[1])), mode="symmetric")


def _resized(prob: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(n, h, w)`` probabilities resampled bilinearly to ``size``."""
    import torch
    import torch.nn.functional as F

    grid = torch.from_numpy(np.ascontiguousarray(prob, dtype=np.float32))[:, None]
    return F.interpolate(grid, size=size, mode="bilinear", align_corners=False)[:, 0].numpy()


def _with_weights(spec: ModelSpec, weights: bytes) -> Any:
    """The architecture of ``spec`` holding ``weights`` (safetensors bytes).

    It is built on torch's meta device, so no time goes on random initial weights (a third
    of a second for a ResNet-18 U-Net), and the weights are then assigned. An architecture
    that keeps a tensor outside its state dict would be left with meta tensors: it is
    built the ordinary way instead.
    """
    import torch
    from safetensors.torch import load

    from cdtools.models import ARCHITECTURES

    def build() -> Any:
        return ARCHITECTURES[spec.arch](
            spec.in_channels, backbone=spec.backbone, pretrained=False, **spec.arch_kwargs
        )

    state = load(weights)
    with torch.device("meta"):
        model = build()
    model.load_state_dict(state, assign=True)
    if any(_meta_tensors(module) for module in model.modules()):
        model = build()
        model.load_state_dict(state)
    return model


def _meta_tensors(module: Any) -> list[str]:
    """Names of the tensors of ``module`` (its own, not its children's) still on meta."""
    import torch

    tensors = itertools.chain(
        module.named_parameters(recurse=False),
        module.named_buffers(recurse=False),
        vars(module).items(),
    )
    return [name for name, t in tensors if isinstance(t, torch.Tensor) and t.is_meta]


def _fold_batch_norms(model: Any, in_channels: int) -> Any:
    """The model with each BatchNorm folded into the convolution before it (inference only),
    in place.

    A BatchNorm registered right after a Conv2d of matching width is taken to follow it,
    as in ResNets and smp decoders; the folding is kept only if it gives the same output
    on a random pair, and undone otherwise, so an architecture where that does not hold
    runs unchanged.
    """
    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    probe = torch.Generator().manual_seed(0)
    pair = tuple(torch.randn(1, in_channels, 64, 64, generator=probe) for _ in range(2))
    with torch.inference_mode():
        expected = model(pair)
    folded = []  # (parent, conv name, conv, bn name, bn): what undoing needs
    for parent in model.modules():
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in itertools.pairwise(children):
            if (
                isinstance(conv, nn.Conv2d)
                and isinstance(bn, nn.BatchNorm2d)
                and bn.num_features == conv.out_channels
            ):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
                folded.append((parent, conv_name, conv, bn_name, bn))
    with torch.inference_mode():
        same = torch.allclose(model(pair), expected, atol=1e-3, rtol=1e-3)
    if not same:
        for parent, conv_name, conv, bn_name, bn in folded:
            setattr(parent, conv_name, conv)
            setattr(parent, bn_name, bn)
    return model
