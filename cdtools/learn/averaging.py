"""Weight averaging while training: validate and keep an exponential moving average.

The average of the weights over the last few hundred steps is often a better model than
the last step's weights, whose noise comes from the last few batches. After every
training step the average moves towards the model (``decay`` per step, shorter at the
start so that it is not anchored to the random initialisation); each validation runs on
the average, which is what a checkpoint then keeps and what training ends with. Batch-norm
statistics are taken from the model as they are, not averaged.
"""

from __future__ import annotations

import copy

import torch

from cdtools.learn.fastai_api import Callback


class WeightAveraging(Callback):
    """An exponential moving average of the weights, swapped in for every validation."""

    order = 15  # after channels-last (BFloat16Training), before checkpoints read validation

    def __init__(self, decay: float = 0.99) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be between 0 and 1, got {decay}")
        self.decay = decay

    def before_fit(self) -> None:
        self.average = copy.deepcopy(self.learn.model).requires_grad_(False)
        self.steps = 0
        self.trained: dict[str, torch.Tensor] | None = None

    @torch.no_grad()
    def after_batch(self) -> None:
        if not self.training:
            return
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        model = self.learn.model
        for average, weight in zip(self.average.parameters(), model.parameters(), strict=True):
            average.lerp_(weight, 1.0 - decay)
        for average, buffer in zip(self.average.buffers(), model.buffers(), strict=True):
            average.copy_(buffer)

    def before_validate(self) -> None:
        model = self.learn.model
        self.trained = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.average.state_dict())

    def before_train(self) -> None:
        # Training goes on from its own weights, not from the average it was validated on.
        if self.trained is not None:
            self.learn.model.load_state_dict(self.trained)
            self.trained = None

    def after_fit(self) -> None:
        # The model ends on the average (the last validation swapped it in).
        del self.average
