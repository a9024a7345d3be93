"""A learning-rate sweep picks a rate only where some rate clearly leaves chance (``Lesson.sweep``).

The training is faked: each rate's training error after the sweep is given, so the tests run in
milliseconds and check the rule itself, the binomial margin below chance 1 - 1/K over n images.
"""
import json
import sys

import numpy as np
import pytest

from test_lessons import LESSONS

sys.path.insert(0, str(LESSONS))
import common  # noqa: E402  (lessons/common.py, as a lesson imports it)
from tinyalex.data.memory import Arrays  # noqa: E402


@pytest.fixture
def lesson(tmp_path, capsys):
    made = common.Lesson("99", "a sweep", "Figure 1", runs={"default": ("nothing", "0 s")},
                         argv=["--quick", "--out", str(tmp_path)])
    capsys.readouterr()  # the banner
    return made


def images(n, classes=10):
    return Arrays(np.zeros((n, 1, 1, 3), np.uint8), np.arange(n) % classes, [str(k) for k in range(classes)])


def sweep(lesson, errors, n, fallback=0.03):
    """``lesson.sweep`` over the rates of ``errors`` ({lr: training error}) on ``n`` training images."""
    lesson.train = lambda model, train_set, test_set, epochs, lr, name, **options: [{"train_top1_error": errors[lr]}]
    rate, record = lesson.sweep(lambda: None, list(errors), images(n), images(10), 1, "net", fallback, widen=0)
    lesson.record(sweep={"net": record}, lr={"net": rate})
    return rate, record


def test_a_sweep_that_leaves_no_rate_clearly_below_chance_says_so_and_falls_back_to_the_stated_rate(lesson, capsys):
    # lesson 04's default run (2,000 images, 10 classes) scored its rates so: 88.85% is noise, not learning
    rate, record = sweep(lesson, {0.001: 0.8885, 0.003: 0.892, 0.01: 0.902}, n=2000)
    assert rate == 0.03 and record["fell_back"] and record["fallback"] == 0.03
    said = [line for line in capsys.readouterr().out.splitlines() if "clearly below chance" in line]
    assert len(said) == 1 and "fallback lr 0.03" in said[0], said
    saved = json.loads(lesson.results_path.read_text())
    assert saved["lr"]["net"] == 0.03 and saved["sweep"]["net"]["fell_back"] is True
    assert saved["sweep"]["net"]["errors"] == {"0.001": 0.8885, "0.003": 0.892, "0.01": 0.902}


def test_clearly_below_chance_is_three_binomial_standard_errors_below_it(lesson):
    _, record = sweep(lesson, {0.001: 0.87}, n=2000)
    assert record["chance"] == pytest.approx(0.9)
    assert record["clearly_below"] == pytest.approx(0.9 - 3 * np.sqrt(0.9 * 0.1 / 2000))  # 88.0%
    assert not record["fell_back"]  # 87% of 2,000 images: 4.5 standard errors below chance
    assert sweep(lesson, {0.001: 0.87}, n=128)[1]["fell_back"]  # of 128 images: 1.1 of them, noise
    assert not sweep(lesson, {0.001: 0.6}, n=128)[1]["fell_back"]


def test_a_sweep_that_leaves_chance_keeps_its_best_rate_whatever_the_fallback(lesson, capsys):
    rate, record = sweep(lesson, {0.001: 0.63, 0.003: 0.58, 0.01: 0.73}, n=2000)  # lesson 02's ReLU on CIFAR-10
    assert rate == 0.003 and not record["fell_back"]
    assert "clearly below chance" not in capsys.readouterr().out


def test_chance_counts_the_classes(lesson):
    lesson.train = lambda *args, **options: [{"train_top1_error": 0.45}]
    _, record = lesson.sweep(lambda: None, [0.001], images(2000, classes=2), images(10, classes=2), 1, "net", 0.03)
    assert record["chance"] == pytest.approx(0.5) and not record["fell_back"]  # 45% of 2,000: 4.5 SE below 50%
