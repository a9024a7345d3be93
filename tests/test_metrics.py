"""Top-k counts as the paper defines its error rates, checked against a sort; running averages."""
import numpy as np
import pytest

from tinyalex import metrics


def test_topk_matches_a_stable_sort(rng):
    scores = rng.integers(0, 4, (200, 10)).astype(np.float32)  # many ties on purpose
    labels = rng.integers(0, 10, 200)
    order = np.argsort(-scores, axis=1, kind="stable")
    for k, count in zip((1, 3, 5), metrics.topk_correct(scores, labels, ks=(1, 3, 5)), strict=True):
        assert int(count) == int((order[:, :k] == labels[:, None]).any(axis=1).sum())


def test_a_constant_output_is_right_only_for_the_first_class():
    scores = np.zeros((4, 10))
    top1, top5 = metrics.topk_correct(scores, np.array([0, 1, 5, 9]))
    assert int(top1) == 1 and int(top5) == 2


def test_a_row_of_nan_scores_is_never_right():
    # a diverged network's NaN outputs compare False with everything: they must not rank first
    scores = np.zeros((3, 10))
    scores[0, 4], scores[1] = np.nan, np.nan
    top1, top5 = metrics.topk_correct(scores, np.array([0, 0, 0]))
    assert int(top1) == 1 and int(top5) == 1
    assert [int(c) for c in metrics.topk_correct(scores, np.array([0, 0, 0]), ks=(11,))] == [3]


def test_running_averages_per_image():
    r = metrics.Running()
    r.add(2, loss=np.array(3.0), correct=np.array(1))
    r.add(6, loss=np.array(5.0), correct=np.array(5))
    assert r.read() == {"loss": 1.0, "correct": 0.75}
    with pytest.raises(ValueError, match="no batches"):
        metrics.Running().read()
