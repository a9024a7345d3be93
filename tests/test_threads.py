"""The memory-bound ops split over the batch on threads compute exactly what one thread computes."""
import threading

import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F, threads
from tinyalex.functional.normalization import negative_power


def batch(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_the_parts_cover_the_batch_once_in_consecutive_slices_at_the_same_time():
    seen, together = [], threading.Barrier(3, timeout=10)  # broken unless all three parts run at once

    def part(i):
        seen.append((i.start, i.stop))
        together.wait()

    with threads.workers(3):
        threads.over_batch(np.zeros((10, threads.MIN_PART)), part)
    assert sorted(seen) == [(0, 3), (3, 6), (6, 10)]


def test_a_small_array_or_one_worker_is_one_call_on_the_calling_thread():
    calls = []
    with threads.workers(4):
        threads.over_batch(np.zeros((8, 10)), lambda i: calls.append((i, threading.current_thread())))
    with threads.workers(1):
        threads.over_batch(np.zeros((8, threads.MIN_PART)), lambda i: calls.append((i, threading.current_thread())))
    assert calls == [(slice(None), threading.current_thread())] * 2


def test_an_error_in_any_part_reaches_the_caller():
    def part(i):
        if i.start:
            raise ValueError("part failed")

    with threads.workers(2), pytest.raises(ValueError, match="part failed"):
        threads.over_batch(np.zeros((4, threads.MIN_PART)), part)


def test_the_count_comes_from_the_setting_then_the_environment(monkeypatch):
    monkeypatch.setenv("TINYALEX_NUM_THREADS", "3")
    assert threads.count() == 3
    with threads.workers(5):
        assert threads.count() == 5
    assert threads.count() == 3
    with pytest.raises(ValueError, match="positive int"):
        with threads.workers(0):
            pass


@pytest.mark.parametrize("op", [
    lambda x: F.lrn(x, groups=2),
    lambda x: F.max_pool2d(x, 3, 2, padding=1),
], ids=["lrn", "overlapping max pooling"])
def test_an_op_on_threads_gives_the_same_bits_as_on_one_thread_forward_and_backward(op):
    x0, gy = batch((8, 16, 48, 48)), None
    assert x0.size // threads.MIN_PART >= 4  # large enough to be cut into 4 parts
    results = {}
    for n in (1, 4):
        with threads.workers(n):
            x = ta.tensor(x0, requires_grad=True)
            y = op(x)
            gy = batch(y.shape, seed=1) if gy is None else gy
            y.backward(ta.tensor(gy))
            results[n] = (y.numpy(), np.asarray(x.grad))
    for one, split in zip(results[1], results[4]):
        np.testing.assert_array_equal(one, split)


def test_the_papers_three_quarter_power_by_square_roots_is_within_four_ulp_of_the_exact_power():
    s = np.geomspace(2.0, 1e6, 100_001).astype(np.float32)  # LRN's s = k + alpha * sum a^2 >= k = 2
    exact = np.power(s.astype(np.float64), -0.75)
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    error = np.abs(negative_power(s, 0.75, out=np.empty_like(s)) - exact) / ulp
    assert error.max() < 4 and error.mean() < 1  # measured: 3.3 and 0.57 (NumPy's power: 0.50, 0.25)
    np.testing.assert_array_equal(negative_power(s, 0.6, out=np.empty_like(s)), np.power(s, -0.6))
