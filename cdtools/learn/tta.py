"""Test-time augmentation: a change map averaged over the 8 dihedral transforms of a tile.

The inference engine (:func:`cdtools.predict_scene`, which
:meth:`cdtools.ChangeDetector.predict` calls) runs its batches through :func:`dihedral_mean`
when asked for ``tta=True``: each transform (identity, quarter turns, the mirror image and its
turns) is applied to both dates, the model predicts change probability, the transform is
undone on that probability map, and the 8 maps are averaged. Probabilities are averaged,
not logits, so a distance model (STANet) and a logit model are treated alike.

Written by hand: the transforms are a few lines of torch, and the libraries that offer
TTA (ttach, albumentations) wrap single-image models, not a ``(before, after)`` pair.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from cdtools.errors import ParameterError

#: ``(before, after)`` batches of ``(b, c, h, w)`` -> ``(b, h, w)`` change probability.
TensorPredictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: The raw outputs test-time augmentation knows how to average (see ``cdtools.models``).
TTA_OUTPUTS = ("logit", "distance")

#: The dihedral group of the square as (quarter turns, mirrored first): index 0 is identity.
DIHEDRAL: tuple[tuple[int, bool], ...] = tuple(
    (turns, mirrored) for mirrored in (False, True) for turns in range(4)
)


def dihedral(x: torch.Tensor, index: int) -> torch.Tensor:
    """Transform ``index`` (0-7) of :data:`DIHEDRAL` applied to the last two axes of ``x``.

    Example:
        >>> x = torch.arange(4).reshape(2, 2)
        >>> dihedral(x, 1).tolist()  # a quarter turn counter-clockwise
        [[1, 3], [0, 2]]
    """
    turns, mirrored = DIHEDRAL[index]
    if mirrored:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, turns, dims=(-2, -1)) if turns else x


def undo_dihedral(x: torch.Tensor, index: int) -> torch.Tensor:
    """The inverse of :func:`dihedral`: ``undo_dihedral(dihedral(x, i), i)`` is ``x``.

    Example:
        >>> x = torch.arange(6).reshape(1, 2, 3)
        >>> torch.equal(undo_dihedral(dihedral(x, 5), 5), x)
        True
    """
    turns, mirrored = DIHEDRAL[index]
    if turns:
        x = torch.rot90(x, -turns, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if mirrored else x


def check_tta_model(model: Any) -> None:
    """Raise :class:`~cdtools.errors.ParameterError` unless ``model`` (a module or its
    class) has an ``output`` of "logit" or "distance", the outputs TTA can average."""
    output = getattr(model, "output", None)
    if output not in TTA_OUTPUTS:
        name = getattr(model, "__name__", type(model).__name__)
        found = "has no `output` attribute" if output is None else f"has output = {output!r}"
        raise ParameterError(
            f"test-time augmentation needs a model whose `output` attribute is one of "
            f"{TTA_OUTPUTS} (a change logit or distance map that turns with its input); "
            f"{name} {found}. Set its output attribute, or predict with tta=False."
        )


def dihedral_mean(
    predict: TensorPredictor, before: torch.Tensor, after: torch.Tensor
) -> torch.Tensor:
    """Change probability ``(b, h, w)`` averaged over the 8 dihedral transforms of a batch.

    Args:
        predict: ``(before, after)`` ``(b, c, h, w)`` tensors to ``(b, h, w)`` change
            probability (after ``to_probability``), e.g. a model wrapped with its
            device, memory format and precision.
        before, after: the batch, normalised; tiles must be square (quarter turns keep
            their shape).

    Returns:
        The float32 mean of the 8 probability maps, each turned back onto the input grid.

    Example:
        >>> f = lambda b, a: torch.sigmoid(a - b).mean(1)
        >>> x = torch.zeros(2, 3, 32, 32)
        >>> dihedral_mean(f, x, x + 1).shape
        torch.Size([2, 32, 32])
    """
    height, width = before.shape[-2:]
    if height != width:
        raise ParameterError(
            f"test-time augmentation needs square tiles (quarter turns must keep their "
            f"shape), got {height} x {width} pixels; pass a square tile or tta=False."
        )
    total = torch.zeros(before.shape[0], height, width, dtype=torch.float32, device=before.device)
    for index in range(len(DIHEDRAL)):
        prob = predict(dihedral(before, index), dihedral(after, index))
        total += undo_dihedral(prob, index).float()
    return total / len(DIHEDRAL)
