from __future__ import annotations

import numpy as np

from cdtools.baseline import best_threshold, naive_baseline


def test_best_threshold_finds_a_separating_cut_and_skips_ignored_pixels() -> None:
    truth = np.array([0, 0, 0, 1, 1, 255])
    score = np.array([0.1, 0.2, 0.3, 0.8, 0.9, 5.0])
    result = best_threshold(score, truth)
    assert result["f1"] == 1.0 and 0.3 <= result["threshold"] < 0.8
    assert result["change_fraction"] == 0.4


def test_naive_baseline_ignores_a_global_brightness_change() -> None:
    rng = np.random.default_rng(0)
    before = rng.normal(100, 10, (3, 64, 64))
    after = before * 1.5 + 20  # another sun, same ground
    after[:, 10:20, 10:20] += 80  # and one real change
    truth = np.zeros((64, 64), dtype=np.uint8)
    truth[10:20, 10:20] = 1
    assert naive_baseline(before, after, truth)["f1"] > 0.95
