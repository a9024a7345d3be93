"""The memory-bound ops split over the batch on threads compute exactly what one thread computes."""
import multiprocessing
import signal
import threading
import time

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


def test_an_error_is_raised_once_every_part_has_ended():
    """A part's outputs must not change after the caller has the error (and may reuse the arrays)."""
    ended = []

    def slow():
        time.sleep(0.2)
        ended.append(True)

    def fail():
        raise ValueError("part failed")

    with threads.workers(3), pytest.raises(ValueError, match="part failed"):
        threads.in_parallel([lambda: None, fail, slow])
    assert ended == [True]


def test_an_interrupt_is_raised_once_every_part_has_ended():
    """Ctrl-C while the caller waits: the parts still running finish first (they write into arrays the
    caller owns), then the KeyboardInterrupt goes on."""
    ended, caller = [], threading.current_thread().ident

    def interrupting():
        signal.pthread_kill(caller, signal.SIGINT)
        time.sleep(0.2)
        ended.append(True)

    with threads.workers(2), pytest.raises(KeyboardInterrupt):
        threads.in_parallel([lambda: None, interrupting])
    assert ended == [True]


def test_a_call_from_inside_a_part_runs_its_calls_in_turn_on_that_thread():
    """The workers are taken while a part runs: a part's own in_parallel must not wait for them."""
    def part():
        return threads.in_parallel([threading.current_thread, threading.current_thread])

    done = []
    with threads.workers(2):
        caller = threading.Thread(target=lambda: done.append(threads.in_parallel([part, part])), daemon=True)
        caller.start()
        caller.join(timeout=20)
    assert done, "in_parallel called from inside a part never returned"
    (a, b), (c, d) = done[0]
    assert a is b and c is d and a is not c  # each part's calls on its own thread; the parts on two


def _parts_in_a_forked_child(conn):
    with threads.workers(2):
        conn.send(threads.in_parallel([lambda: 1, lambda: 2]))


def test_a_forked_child_starts_workers_of_its_own():
    """A process forked after the workers started (multiprocessing's default on Linux) has none of them."""
    with threads.workers(2):
        threads.in_parallel([lambda: None, lambda: None])  # the parent's workers are started
    context = multiprocessing.get_context("fork")
    mine, theirs = context.Pipe()
    child = context.Process(target=_parts_in_a_forked_child, args=(theirs,), daemon=True)
    child.start()
    child.join(timeout=20)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0 and mine.poll() and mine.recv() == [1, 2]


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
    F.relu,
], ids=["lrn", "overlapping max pooling", "relu"])
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


def test_gemm_calls_run_on_a_one_thread_blas_which_is_given_back_after():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not blas.lib_controllers:
        pytest.skip("threadpoolctl finds no BLAS in this NumPy")
    before, together = blas.info()[0]["num_threads"], threading.Barrier(2, timeout=10)

    def inside():
        together.wait()  # both calls at once: the limit holds while they run side by side
        return threadpoolctl.ThreadpoolController().select(user_api="blas").info()[0]["num_threads"]

    assert threads.in_parallel([inside, inside], gemm=True) == [1, 1]
    assert blas.info()[0]["num_threads"] == before


def test_a_single_gemm_call_also_holds_the_blas_at_one_thread_unless_tinyalex_has_one_worker():
    """A product too small to split must not wake the BLAS's threads either (they would spin into the
    next op's parts); with one worker tinyalex leaves the BLAS its own threads."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not blas.lib_controllers:
        pytest.skip("threadpoolctl finds no BLAS in this NumPy")
    before = blas.info()[0]["num_threads"]

    def inside():
        return threadpoolctl.ThreadpoolController().select(user_api="blas").info()[0]["num_threads"]

    with threads.workers(2):
        assert threads.in_parallel([inside], gemm=True) == [1]
        with threads.one_blas_thread():
            assert inside() == 1
    with threads.workers(1):
        assert threads.in_parallel([inside], gemm=True) == [before]
    assert inside() == before


def near(x, y):
    """Equal but for the order OpenBLAS adds a dot product's terms in, which can change at the edge of
    a cut: rows or columns cut in three changed the last bits of 59 and 170 of 300 random shapes."""
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)


def product_calls(monkeypatch, workers, a, b):
    """threads.matmul(a, b) on ``workers`` threads, checked against a @ b: the product and the
    (left factor, right factor, result) shapes of the np.matmul calls it made."""
    calls, real = [], np.matmul
    monkeypatch.setattr(np, "matmul", lambda x, y, out: calls.append((x.shape, y.shape, out.shape)) or real(x, y, out=out))
    with threads.workers(workers):
        got = threads.matmul(a, b)
    monkeypatch.setattr(np, "matmul", real)
    near(got, a @ b)
    return got, calls


@pytest.mark.parametrize("workers", [1, 3])
def test_the_product_on_threads_is_one_calls_within_rounding_also_for_transposed_views(monkeypatch, workers):
    monkeypatch.setattr(threads, "MIN_PART", 1)
    a, b = batch((37, 40)), batch((40, 11), seed=1)
    with threads.workers(workers):
        # rows cut (37 >= 11), then columns (11 < 37), each also with the factors as transposed views
        for x, y in ((a, b), (np.asfortranarray(a), b.T.copy().T), (b.T, a.T), (b.T.copy(), a.T.copy())):
            got = threads.matmul(x, y)
            near(got, x @ y)
            np.testing.assert_array_equal(threads.matmul(x, y), got)  # the same bits each time
        assert threads.matmul(a.astype(np.float64), b).dtype == np.float64


@pytest.mark.parametrize("workers", [1, 3])
def test_a_short_sum_is_made_in_blocks_of_rows(monkeypatch, workers):
    """K <= SHORT_K (a batch of 16's weight gradient): rows cut even where there are more columns,
    each part in blocks of BLOCK_BYTES of result, the last block of a part shorter."""
    monkeypatch.setattr(threads, "MIN_PART", 1)
    monkeypatch.setattr(threads, "BLOCK_BYTES", 3 * 50 * 4)  # three rows a call
    _, calls = product_calls(monkeypatch, workers, batch((37, 2)), batch((2, 50), seed=1))
    rows = [out[0] for _, _, out in calls]
    assert max(rows) == 3 and sum(rows) == 37 and all(out[1] == 50 for _, _, out in calls)
    assert len(calls) == (13 if workers == 1 else 4 + 4 + 5)  # 37 rows; 12, 12, 13 rows a part


def test_a_sum_short_but_not_beside_the_results_rows_is_cut_as_any_other_product(monkeypatch):
    """Winograd's filter transforms, (36, 9) @ (9, O C): fewer than SHORT_RATIO K rows, so the
    columns are cut, one call a part, not blocks of rows that each read all of b."""
    monkeypatch.setattr(threads, "MIN_PART", 1)
    monkeypatch.setattr(threads, "BLOCK_BYTES", 3 * 50 * 4)
    _, calls = product_calls(monkeypatch, 3, batch((37, 3)), batch((3, 50), seed=1))
    assert len(calls) == 3 and all(out[0] == 37 for _, _, out in calls)
    assert sum(out[1] for _, _, out in calls) == 50


@pytest.mark.parametrize("workers", [1, 3])
def test_a_few_rows_times_transposed_weights_is_made_transposed_into_a_row_major_result(monkeypatch, workers):
    """x W^T for a batch of 16 (M <= SKINNY_ROWS): (W x^T)^T, the long factor on the left as it is
    stored, its rows cut; the result C-contiguous like every other product's. gy W stays as it is."""
    monkeypatch.setattr(threads, "MIN_PART", 1)
    x, w = batch((16, 40)), batch((70, 40), seed=1)
    y, made = product_calls(monkeypatch, workers, x, w.T)
    assert y.flags.c_contiguous and y.shape == (16, 70)
    assert sum(left[0] for left, _, _ in made) == 70 and all(out[1] == 16 for _, _, out in made)
    _, made = product_calls(monkeypatch, workers, batch((16, 70), seed=2), w)
    assert all(left == (16, 70) for left, _, _ in made)


@pytest.mark.parametrize("workers", [1, 3])
def test_a_few_rows_times_a_deep_row_major_factor_is_summed_in_blocks_of_terms(monkeypatch, workers):
    """gy W for a batch of 16 through fc6 (K >= LONG_K): the sum cut among the threads, each part
    SUM_BLOCK terms a product, the blocks' and the parts' products added."""
    monkeypatch.setattr(threads, "MIN_PART", 1)
    monkeypatch.setattr(threads, "LONG_K", 60)
    monkeypatch.setattr(threads, "SUM_BLOCK", 7)
    gx, calls = product_calls(monkeypatch, workers, batch((16, 70)), batch((70, 40), seed=1))
    assert gx.shape == (16, 40) and gx.dtype == np.float32
    assert all(left[1] <= 7 and left[0] == 16 and out == (16, 40) for left, _, out in calls)
    assert sum(left[1] for left, _, _ in calls) == 70
    assert len(calls) == (10 if workers == 1 else 4 + 4 + 4)  # 70 terms; 23, 23, 24 a part


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("images_per_chunk", [1, 2])
@pytest.mark.parametrize("images_first", [True, False])
def test_a_convolution_cut_into_parts_on_threads_matches_the_loop_reference(monkeypatch, workers, images_per_chunk,
                                                                              images_first):
    """Each thread's part of the batch goes through its own chunks; gx is written per image and the
    parts' weight gradients are summed: float64 results and gradients equal the loop reference's,
    with the columns' images first or last."""
    from tinyalex.functional import conv
    from tinyalex.functional.reference import conv2d_backward_reference, conv2d_reference
    (N, C, H, W), (O, Cg, KH, KW), stride, padding, groups = (7, 4, 6, 7), (6, 2, 3, 3), (1, 1), 1, 2
    monkeypatch.setattr(threads, "MIN_PART", 1)
    monkeypatch.setattr(conv, "IMAGES_FIRST_VALUES", 1 << 30 if images_first else 0)
    monkeypatch.setattr(conv, "CPU_CHUNK_BYTES", images_per_chunk * C * KH * KW * H * W * 8)
    rng = np.random.default_rng(0)
    x, w, b = (ta.tensor(rng.standard_normal(s), requires_grad=True) for s in ((N, C, H, W), (O, Cg, KH, KW), (O,)))
    with threads.workers(workers):
        y = F.conv2d(x, w, b, stride, padding, groups, algorithm="im2col")
        assert len(y.creator.saved.parts) == workers and y.creator.images_first == images_first
        gy = rng.standard_normal(y.shape)
        y.backward(gy)
    np.testing.assert_allclose(y.numpy(), conv2d_reference(x.data, w.data, b.data, stride, padding, groups),
                               rtol=1e-12, atol=1e-12)
    for got, want in zip((x.grad, w.grad, b.grad), conv2d_backward_reference(x.data, w.data, gy, stride, padding, groups)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_the_callers_floating_point_error_handling_holds_on_every_thread():
    """np.errstate is per thread: a training loop that ignores overflow must not see it raised by a part."""
    def overflow():
        return np.float32(3e38) * np.float32(10)

    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            threads.in_parallel([overflow, overflow])
    with np.errstate(over="ignore"):
        assert threads.in_parallel([overflow, overflow]) == [np.inf, np.inf]


@pytest.mark.parametrize("workers", [2, 3])
def test_a_winograd_convolution_cut_into_parts_on_threads_matches_the_loop_reference(monkeypatch, workers):
    """Winograd's parts: gx per image, the parts' transformed weight gradients gU summed, in float64
    equal to the loop reference (F(2x2, 3x3) with groups and remainder tiles)."""
    from tinyalex.functional.reference import conv2d_backward_reference, conv2d_reference
    (N, C, H, W), (O, Cg, K, _), padding, groups = (7, 4, 7, 6), (6, 2, 3, 3), 1, 2
    monkeypatch.setattr(threads, "MIN_PART", 1)
    rng = np.random.default_rng(0)
    x, w, b = (ta.tensor(rng.standard_normal(s), requires_grad=True) for s in ((N, C, H, W), (O, Cg, K, K), (O,)))
    with threads.workers(workers):
        y = F.conv2d(x, w, b, 1, padding, groups, algorithm="winograd")
        assert y.creator.algorithm == "winograd" and len(y.creator.saved.parts) == workers
        gy = rng.standard_normal(y.shape)
        y.backward(gy)
    np.testing.assert_allclose(y.numpy(), conv2d_reference(x.data, w.data, b.data, (1, 1), padding, groups),
                               rtol=1e-11, atol=1e-11)
    for got, want in zip((x.grad, w.grad, b.grad), conv2d_backward_reference(x.data, w.data, gy, (1, 1), padding, groups)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


def test_cut_by_size_makes_the_fewest_slices_of_at_most_that_many():
    for start, stop, most in [(0, 11, 3), (5, 64, 16), (0, 7, 7), (2, 3, 5)]:
        pieces = threads.cut_by_size(start, stop, most)
        lengths = [p.stop - p.start for p in pieces]
        assert pieces[0].start == start and pieces[-1].stop == stop and sum(lengths) == stop - start
        assert max(lengths) <= most and max(lengths) - min(lengths) <= 1
        assert len(pieces) == -(-(stop - start) // most)
    assert threads.cut_by_size(4, 4, 3) == [slice(4, 4)]
