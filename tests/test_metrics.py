from __future__ import annotations

import numpy as np
import pytest
import torch

from cdtools.errors import ParameterError
from cdtools.learn.losses import (
    BatchBalancedContrastiveLoss,
    BCEDiceLoss,
    label_edges,
    lovasz_hinge,
)
from cdtools.learn.metrics import (
    best_f1_threshold,
    confusion,
    probability_histogram,
    scores,
    supported_f1_threshold,
)


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


def chip(change: dict[float, int], no_change: dict[float, int]) -> np.ndarray:
    """One chip's probability histogram (100 bins) from {probability: pixel count}."""
    prob = [p for p, n in change.items() for _ in range(n)]
    prob += [p for p, n in no_change.items() for _ in range(n)]
    target = [1] * sum(change.values()) + [0] * sum(no_change.values())
    return probability_histogram(torch.tensor(prob), torch.tensor(target), bins=100)


def test_a_threshold_the_chips_support_is_kept_away_from_half() -> None:
    # every chip: change at 0.15, no change at 0.05, so F1 is 1 only in (0.05, 0.15]
    counts = np.stack([chip({0.15: 40 + i}, {0.05: 400}) for i in range(20)])
    assert best_f1_threshold(counts.sum(axis=0)) <= 0.15
    assert 0.05 < supported_f1_threshold(counts) <= 0.15  # the one nearest 0.5 of them


def test_an_edge_one_chip_makes_gives_way_to_half() -> None:
    # chip A separates at any threshold; chip B's faint change (0.3) is best caught low,
    # which pays 0.833 against 0.8 at 0.5 and rests on B alone: not supported
    counts = np.stack([chip({0.9: 100}, {0.1: 1000}), chip({0.3: 50}, {0.35: 60, 0.05: 500})])
    assert best_f1_threshold(counts.sum(axis=0)) <= 0.3
    assert supported_f1_threshold(counts) == 0.5
    # with no spread between chips (one chip), the best is taken as before
    assert supported_f1_threshold(counts.sum(axis=0, keepdims=True)) <= 0.3


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


def test_tversky_weighs_missed_change_against_false_change() -> None:
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2] = 1  # 8 change pixels
    misses = torch.where(target == 1, 20.0, -20.0)[:, None].clone()
    misses[0, 0, 0, :2] = -20.0  # 2 change pixels missed
    adds = torch.where(target == 1, 20.0, -20.0)[:, None].clone()
    adds[0, 0, 2, :2] = 20.0  # 2 false change pixels
    dice_only = {"bce_weight": 0.0, "smooth": 0.0}
    # by hand: overlap 6, missed 2 -> Dice 1 - 6/7; overlap 8, false 2 -> 1 - 8/9
    assert BCEDiceLoss(**dice_only)(misses, target).item() == pytest.approx(1 / 7, abs=1e-4)
    assert BCEDiceLoss(**dice_only)(adds, target).item() == pytest.approx(1 / 9, abs=1e-4)
    recall = BCEDiceLoss(tversky_beta=0.7, **dice_only)
    # 1 - 6 / (6 + 0.7 * 2) and 1 - 8 / (8 + 0.3 * 2)
    assert recall(misses, target).item() == pytest.approx(1 - 6 / 7.4, abs=1e-4)
    assert recall(adds, target).item() == pytest.approx(1 - 8 / 8.6, abs=1e-4)
    with pytest.raises(ParameterError, match="tversky_beta must be between 0 and 1"):
        BCEDiceLoss(tversky_beta=1.0)


def test_ignore_edge_skips_a_band_around_the_label_outline() -> None:
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:5, 2:5] = 1  # a 3 x 3 square of change
    edges = label_edges((target == 1).float(), 1)[0]
    # the square's outline grown by one pixel each way: a 5 x 5 ring minus its centre
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[1:6, 1:6] = True
    expected[3, 3] = False
    assert torch.equal(edges, expected)
    assert not label_edges(torch.ones(1, 4, 4), 2).any()  # the image border is no edge
    good = torch.where(target == 1, 8.0, -8.0).float()[:, None]
    blurred = good.clone()
    blurred[0, 0][expected] = 100.0  # confident nonsense only along the outline
    loss = BCEDiceLoss(ignore_edge=1)
    assert loss(blurred, target).item() == pytest.approx(loss(good, target).item(), abs=1e-6)
    assert BCEDiceLoss()(blurred, target) > loss(blurred, target) + 1.0
    with pytest.raises(ParameterError, match="ignore_edge must be 0 or more"):
        BCEDiceLoss(ignore_edge=-1)


def test_lovasz_hinge_by_hand_and_in_the_loss() -> None:
    # every margin at least 1 on the right side: no loss
    assert lovasz_hinge(torch.tensor([3.0, -2.0, 1.0]), torch.tensor([1.0, 0.0, 1.0])) == 0
    # one change and one unchanged pixel, both at logit 0: hinge errors 1 and 1, and the
    # Jaccard loss's steps 1 and 0 (change first) or 0.5 and 0.5 (change second): 1
    assert lovasz_hinge(torch.zeros(2), torch.tensor([1.0, 0.0])).item() == pytest.approx(1.0)
    # one wrong pixel of three (a missed change at margin -1): error 2, its Jaccard step 1/2
    got = lovasz_hinge(torch.tensor([-1.0, 5.0, -5.0]), torch.tensor([1.0, 1.0, 0.0]))
    assert got.item() == pytest.approx(1.0)
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:5, 2:5] = 1
    good = torch.where(target == 1, 8.0, -8.0).float()[:, None]
    loss = BCEDiceLoss(dice_weight=0.0, lovasz_weight=1.0)
    assert loss(good, target) < 0.01 < loss(-good, target)
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
