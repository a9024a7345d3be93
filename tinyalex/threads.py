"""An op's work split over the batch across a few threads, so that every core has a part.

A large GEMM keeps every core busy (the BLAS has threads of its own); the passes between the GEMMs
(pooling, LRN, the layout moves) are NumPy loops over whole arrays, on one core, and a convolution's
thin GEMMs split badly over the BLAS's threads. NumPy's ufuncs and BLAS release the GIL while they
run over large arrays, so the images of a batch cut into W consecutive parts, one per thread, run
side by side: ``over_batch(n, part)`` calls ``part(images)`` for each part's slice of the n images
and returns when all are done. Each image's result depends on
that image alone, so the parts compute exactly what one call over the whole batch computes.
``slices`` and ``in_parallel`` are the two halves of it, for an op that keeps what its parts return
(im2col's convolution: each part copies, multiplies on a one-thread BLAS, and keeps its columns).

W is ``$TINYALEX_NUM_THREADS`` or else the cores this process may run on; ``with threads.workers(1):``
sets it for a block (an A/B measurement, or a process that shares its cores). CuPy arrays are never
split: one GPU kernel already spans the device.

While the work is split over these threads, NumPy's BLAS is held at one thread of its own, also for
a product too small to split (``one_blas_thread``): after a call on its W threads OpenBLAS keeps them
spinning for ~0.1 s, waiting for more work, and they take the cores from the parts of the ops that
follow. In a training step of the four-layer CNN, where a few small products (the Winograd filter
transforms, the last layer) woke them, back-to-back steps took 187 ms against 158 ms with the BLAS
held at one thread throughout (in-process A/B, BENCHMARKS.md). ``matmul`` is the fully connected
layers' product on the threads.

What a part should look like: few NumPy calls, each a long one. A call takes the GIL to start and
to finish, and a thread that finds it taken sleeps until the other lets go; waking it costs time in
which its core idles. Measured (BENCHMARKS.md): two threads each running ``np.add`` over 4,096 to
65,536 floats a call took as long as one thread running both loops (0.94-0.98x), over 262,144
floats 1.40x less; two threads each making the 64 copies of a Winograd chunk's tiles, one call a
copy, took 2.6x as long as one thread making them alone, and 1.1x as long when each made them as one
call from one view. So a part copies through one view rather than a loop of slices
(``im2col.windows``) and runs a chunk of images per call.
"""
import contextlib
import functools
import os
import threading

import numpy as np

from . import backend

MIN_PART = 1 << 16  # values a part must hold to be worth a thread's wake-up (tens of microseconds)
SKINNY_ROWS = 32    # matmul: products of at most this many rows are made transposed
SHORT_K = 32        # matmul: products of a sum this short are made in blocks of rows
SHORT_RATIO = 16    # ... when the result's sides are this many times longer than the sum
BLOCK_BYTES = 1 << 20  # ... of at most this much result each
LONG_K = 2048       # matmul: a few rows times a row-major factor this deep: the sum cut in blocks
SUM_BLOCK = 64      # ... of this many terms

_dispatch = threading.Lock()  # held by the one caller whose calls the workers run
_started = []      # the workers, started on first use, more when more are asked for
_blas = None       # threadpoolctl's controller of NumPy's BLAS, made on first use
_workers = None    # set by ``workers``; None: the environment's or the machine's count


def count():
    """Threads ``over_batch`` splits into: ``workers``' setting, else $TINYALEX_NUM_THREADS, else the
    cores this process may use."""
    if _workers is not None:
        return _workers
    setting = os.environ.get("TINYALEX_NUM_THREADS", "")
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def workers(n):
    """Within the block, split into ``n`` threads (1: every op on the calling thread, as before)."""
    global _workers
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"threads.workers: n must be a positive int, got {n!r}")
    saved, _workers = _workers, n
    try:
        yield
    finally:
        _workers = saved


class _Worker:
    """A thread that runs one call at a time, handed over and back through two locks: the cheapest
    wake-up Python offers, ~30 us a round trip here against ~140 us through concurrent.futures'
    queue and futures (two threads each running an empty call; BENCHMARKS.md)."""

    def __init__(self):
        self._go, self._done = threading.Lock(), threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._call = self._outcome = None
        threading.Thread(target=self._loop, name=f"tinyalex-{len(_started)}", daemon=True).start()

    def _loop(self):
        while True:
            self._go.acquire()
            try:
                self._outcome = (self._call(), None)
            except BaseException as e:  # handed to the caller, which raises it
                self._outcome = (None, e)
            self._call = None
            self._done.release()

    def start(self, call):
        self._call = call
        self._go.release()

    def wait(self):
        """(result, error) of the call, once it has ended: also through a KeyboardInterrupt, since its
        outputs must not change after the caller has gone on (the interrupt is then its error)."""
        interrupted = False
        while True:
            try:
                self._done.acquire()
                break
            except KeyboardInterrupt:
                interrupted = True
        outcome, self._outcome = self._outcome, None  # the worker keeps no result alive
        return (None, KeyboardInterrupt()) if interrupted else outcome


def _workers_for(n):
    while len(_started) < n:
        _started.append(_Worker())
    return _started[:n]


def _forget_workers():
    """In a forked child: the parent's workers are not there, and its lock may have been held."""
    global _dispatch
    _dispatch = threading.Lock()
    _started.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def slices(array, values=None):
    """The consecutive slices of ``array``'s first axis (its n images), one per thread, for work of
    ``values`` numbers in all (default: the array's size): at most ``count()`` of them, at most n, and
    none smaller than MIN_PART values. A single slice(None) when one thread is all that is worth it,
    and for a CuPy array."""
    n, values = array.shape[0], array.size if values is None else values
    w = min(count(), n, values // MIN_PART)
    if w <= 1 or backend.xp(array) is not np:
        return [slice(None)]
    return cut(0, n, w)


def cut(start, stop, k):
    """start..stop cut into k consecutive slices whose lengths differ by one at most."""
    bounds = [start + (stop - start) * i // k for i in range(k + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def cut_by_size(start, stop, most):
    """start..stop cut into the fewest consecutive slices of at most ``most`` (>= 1) each, their
    lengths differing by one at most (``cut``): a part's chunks of images. An empty range is one
    empty slice."""
    return cut(start, stop, max(1, -(-(stop - start) // most)))


def in_parallel(calls, gemm=False):
    """Run the argument-free callables ``calls`` side by side (the calling thread takes the first) and
    return their results in order; raises the first error one of them raised, once all have ended.

    ``gemm=True``: the calls multiply matrices; NumPy's BLAS is held at one thread of its own while
    they run, so that W single-thread GEMMs on W cores replace one GEMM split W ways (thin products,
    as a convolution's, split badly: BENCHMARKS.md measures it).

    One caller at a time hands calls to the workers; a call made while they are taken (from inside a
    part, or from another thread's op) runs its calls in turn on its own thread: the same results.
    """
    with one_blas_thread(gemm):
        if len(calls) == 1 or not _dispatch.acquire(blocking=False):
            return [call() for call in calls]
        try:
            handling = np.geterr()  # NumPy's floating-point error handling is per thread: the caller's holds
            workers = _workers_for(len(calls) - 1)
            for worker, call in zip(workers, calls[1:]):
                worker.start(functools.partial(_with_errors, handling, call))
            try:
                outcomes = [(calls[0](), None)]
            except BaseException as e:
                outcomes = [(None, e)]
            outcomes += [worker.wait() for worker in workers]
        finally:
            _dispatch.release()
    errors = [e for _, e in outcomes if e is not None]
    if errors:  # an interrupt first, else the first call's error
        raise next((e for e in errors if isinstance(e, KeyboardInterrupt)), errors[0])
    return [result for result, _ in outcomes]


def _with_errors(errors, call):
    with np.errstate(**errors):
        return call()


@contextlib.contextmanager
def one_blas_thread(hold=True):
    """Within the block NumPy's BLAS runs on one thread (``hold`` False, or a single worker: as it was).

    For the products of an op that runs outside its parts (a transform of the filters): a call on the
    BLAS's own threads would leave them spinning into the parts of the next ops (module docstring).
    """
    if not hold or count() == 1:
        yield
        return
    global _blas
    if _blas is None:
        import threadpoolctl  # its controller scans the loaded libraries: made once, when first needed
        _blas = threadpoolctl.ThreadpoolController()
    with _blas.limit(limits=1, user_api="blas"):
        yield


def matmul(a, b):
    """a @ b for 2-D arrays a (M, K) and b (K, N): on the CPU the longer side of the result cut into
    one part per thread (``slices``, by the values the product reads and writes), each multiplied on a
    one-thread BLAS into its block of the result. Each part reads all of the factor that is not cut,
    so M rows are cut when M >= N (a batch of 128 through fc6), else the N columns. Each entry is the
    dot product of a row and a column whatever the cut, but OpenBLAS may add its terms in another
    order at the edge of a block, so the result equals one call's within rounding (tested), not bit
    for bit in every shape; the same bits run after run at one number of threads. Three shapes are
    made differently, as OpenBLAS runs them faster (in-process, 2 threads, ms; BENCHMARKS.md):

    - a few rows (M <= SKINNY_ROWS, a batch of 16 through AlexNet's fc layers), more columns, and b
      the transposed view of a row-major matrix (the weights in forward, x W^T): the product is made
      transposed, (b^T a^T)^T, the long factor on the left as it is stored, its rows cut. Forward of
      fc6 23.8 -> 20.7 and 24.8 -> 19.5, fc7 11.6 -> 9.2 and 10.6 -> 8.3, fc8 2.6 -> 1.8 and 2.7 ->
      1.9. (The input gradient's product, gy W, made so: fc6 1.2x faster, fc7 and fc8 0.8-1.0x.)
    - a few rows times a row-major b (gy W, the input gradient) with a long sum (K >= LONG_K): the
      sum cut among the threads, each part in blocks of SUM_BLOCK terms, a (M, N) product a block
      added into the part's sum, the parts' sums added. Input gradient of fc6 27.7 -> 25.2 and 24.2
      -> 18.5, fc7 11.8 -> 12.1 and 9.7 -> 8.6; fc8's (K = 1000) 2.1 -> 2.3 and 1.8 -> 2.2, so not
      there.
    - a short sum (K <= SHORT_K, the weight gradient of a batch of 16) that is short beside both
      sides of the result too (M and N at least SHORT_RATIO K: both factors are small beside it):
      rows cut whatever the shape, each part in blocks of rows of at most BLOCK_BYTES of result,
      which stay in the cache between OpenBLAS's zeroing of the result and its adding of the
      products. fc6's weight gradient 28.3 -> 24.6 and 27.4 -> 21.7, fc7's and fc8's within 5% either
      way. Winograd's filter transforms, (36, 9) @ (9, 98304) for AlexNet's conv3, are cut as any
      other product: in blocks of rows they took 4.6 ms against 1.85 (BENCHMARKS.md).
    A CuPy product is one call."""
    if backend.xp(a) is not np:
        return a @ b
    if a.shape[0] <= SKINNY_ROWS < b.shape[1]:
        if b.T.flags.c_contiguous:
            return np.ascontiguousarray(matmul(b.T, a.T).T)
        if b.flags.c_contiguous and a.shape[1] >= LONG_K:
            terms = slices(b, a.size + b.size)  # b's first axis is the sum's
            return functools.reduce(np.add, in_parallel([functools.partial(_sum_blocks, a, b, s) for s in terms],
                                                        gemm=True))
    out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))
    values = a.size + b.size + out.size
    short = a.shape[1] <= SHORT_K and min(out.shape) >= SHORT_RATIO * a.shape[1]
    if a.shape[0] >= b.shape[1] or short:
        rows = max(1, BLOCK_BYTES // (out.shape[1] * out.itemsize)) if short else a.shape[0]
        calls = [functools.partial(_row_blocks, a, b, out, s, rows) for s in slices(a, values)]
    else:
        calls = [functools.partial(np.matmul, a, b[:, s], out=out[:, s]) for s in slices(b.T, values)]
    in_parallel(calls, gemm=True)
    return out


def _row_blocks(a, b, out, part, rows):
    """out[part] = a[part] @ b, ``rows`` rows a call."""
    start, stop, _ = part.indices(a.shape[0])
    for r in range(start, stop, rows):
        block = slice(r, min(r + rows, stop))
        np.matmul(a[block], b, out=out[block])


def _sum_blocks(a, b, terms):
    """a[:, terms] @ b[terms], the sum over ``terms`` made SUM_BLOCK terms a product."""
    start, stop, _ = terms.indices(a.shape[1])
    total = np.zeros((a.shape[0], b.shape[1]), np.result_type(a, b))
    product = np.empty_like(total)
    for k in range(start, stop, SUM_BLOCK):
        block = slice(k, min(k + SUM_BLOCK, stop))
        total += np.matmul(a[:, block], b[block], out=product)
    return total


def over_batch(array, part):
    """Call ``part(images)`` for consecutive slices ``images`` of ``array``'s first axis that cover it,
    on up to ``count()`` threads (the calling thread takes the first slice), and wait for all.

    ``part`` writes its results into arrays made beforehand (``out[images] = ...``); what it returns
    is dropped. Too small an array, one thread, or a CuPy array: one call, ``part(slice(None))``.
    """
    in_parallel([functools.partial(part, s) for s in slices(array)])
