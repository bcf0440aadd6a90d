from __future__ import annotations

import pytest
import torch
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from fastai.optimizer import SGD
from torch import nn
from torch.utils.data import TensorDataset

from cdtools.learn.averaging import WeightAveraging


class Weights(Callback):
    """Records the weight of a 1x1 linear model before and after every training step."""

    order = 14  # after the optimiser step, before WeightAveraging moves its average

    def before_fit(self) -> None:
        self.before: list[float] = []
        self.after: list[float] = []

    def before_batch(self) -> None:
        if self.training:
            self.before.append(float(self.learn.model.weight.detach()))

    def after_batch(self) -> None:
        if self.training:
            self.after.append(float(self.learn.model.weight.detach()))


def line_learner(seed: int = 0) -> Learner:
    torch.manual_seed(seed)
    x = torch.randn(64, 1)
    data = TensorDataset(x, 3.0 * x + 0.1 * torch.randn(64, 1))
    dls = DataLoaders.from_dsets(data, data, bs=8, device="cpu")
    model = nn.Linear(1, 1, bias=False)
    learn = Learner(dls, model, loss_func=nn.MSELoss(), lr=0.05, opt_func=SGD)
    learn.logger = lambda *_: None
    return learn


def test_the_model_ends_on_the_moving_average_of_its_steps() -> None:
    learn, weights = line_learner(), Weights()
    learn.fit(3, cbs=[weights, WeightAveraging(decay=0.8)])
    average = weights.before[0]  # the initial weights
    for step, weight in enumerate(weights.after, start=1):
        decay = min(0.8, (1 + step) / (10 + step))
        average = decay * average + (1 - decay) * weight
    assert float(learn.model.weight.detach()) == pytest.approx(average, rel=1e-5)
    assert float(learn.model.weight.detach()) != pytest.approx(weights.after[-1], rel=1e-3)


def test_training_goes_on_from_its_own_weights_not_the_average() -> None:
    learn, weights = line_learner(), Weights()
    learn.fit(2, cbs=[weights, WeightAveraging(decay=0.8)])
    steps_per_epoch = len(weights.after) // 2
    # The first step of epoch 2 starts where epoch 1's last step ended.
    assert weights.before[steps_per_epoch] == weights.after[steps_per_epoch - 1]


def test_validation_scores_the_average() -> None:
    learn = line_learner()
    learn.fit(2, cbs=[WeightAveraging(decay=0.8)])
    valid_loss = learn.recorder.values[-1][1]  # read before validate() resets the recorder
    assert learn.validate()[0] == pytest.approx(valid_loss, rel=1e-5)


def test_a_decay_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match="decay"):
        WeightAveraging(decay=1.0)
