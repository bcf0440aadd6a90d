from __future__ import annotations

import numpy as np
import pytest
import torch

from cdtools.learn.losses import BatchBalancedContrastiveLoss, BCEDiceLoss
from cdtools.learn.metrics import confusion, scores


def test_confusion_counts_labelled_pixels_only() -> None:
    target = torch.tensor([[[0, 0, 1, 1, 255, 255]]])
    prob = torch.tensor([[[0.1, 0.9, 0.8, 0.3, 0.9, 0.1]]])
    assert confusion(prob, target, 0.5).tolist() == [[1, 1], [1, 1]]


def test_scores_by_hand() -> None:
    # tn=80, fp=5, fn=10, tp=5
    table = scores(np.array([[80, 5], [10, 5]]))
    change = table["Change"]
    assert change["precision"] == pytest.approx(5 / 10)
    assert change["recall"] == pytest.approx(5 / 15)
    assert change["f1"] == pytest.approx(2 * 5 / (2 * 5 + 5 + 10))
    assert change["iou"] == pytest.approx(5 / 20)
    assert change["support"] == 15
    assert table["NoChange"]["precision"] == pytest.approx(80 / 90)
    assert table["NoChange"]["recall"] == pytest.approx(80 / 85)


def test_scores_of_an_empty_class_are_zero_not_nan() -> None:
    table = scores(np.array([[10, 0], [0, 0]]))
    assert table["Change"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "iou": 0.0,
        "support": 0.0,
    }


def test_bce_dice_ignores_255_and_rewards_the_truth() -> None:
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:5, 2:5] = 1
    good = torch.where(target == 1, 8.0, -8.0).float()[:, None]
    bad = -good
    loss = BCEDiceLoss()
    assert loss(good, target) < 0.05 < loss(bad, target)
    ignored = target.clone()
    ignored[0, :, 6:] = 255
    noisy = good.clone()
    noisy[..., 6:] = 100.0  # confident nonsense where nothing is labelled
    assert loss(noisy, ignored) == pytest.approx(loss(good, ignored).item(), abs=1e-6)


def test_batch_balanced_contrastive_loss_by_hand() -> None:
    target = torch.tensor([[[0, 0, 0, 1]]])
    distance = torch.tensor([[[[0.0, 1.0, 2.0, 0.5]]]])
    # unchanged: mean(0, 1, 4) / 2 = 5/6; changed: (2 - 0.5)^2 / 2 = 1.125
    assert BatchBalancedContrastiveLoss(margin=2.0)(distance, target).item() == pytest.approx(
        5 / 6 + 1.125
    )
