"""The memory-bound passes on every core: an op's work split over the batch across a few threads.

A convolution's GEMM keeps every core busy (the BLAS has threads of its own); the passes between the
GEMMs (pooling, LRN, the layout moves) are NumPy loops over whole arrays, on one core. NumPy's ufuncs
release the GIL while they run over large arrays, so the images of a batch cut into W consecutive
parts, one per thread, run those loops side by side: ``over_batch(n, part)`` calls ``part(images)``
for each part's slice of the n images and returns when all are done. Each image's result depends on
that image alone, so the parts compute exactly what one call over the whole batch computes.

W is ``$TINYALEX_NUM_THREADS`` or else the cores this process may run on; ``with threads.workers(1):``
sets it for a block (an A/B measurement, or a process that shares its cores). CuPy arrays are never
split: one GPU kernel already spans the device.
"""
import concurrent.futures
import contextlib
import os
import threading

from . import backend

MIN_PART = 1 << 16  # values a part must hold to be worth a thread's wake-up (tens of microseconds)

_lock = threading.Lock()
_pool = None       # the executor, made on first use, remade larger when more workers are asked for
_pool_size = 0
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


def _executor(n):
    global _pool, _pool_size
    with _lock:
        if _pool_size < n:
            if _pool is not None:
                _pool.shutdown(wait=False)  # its running parts finish; new ones go to the larger pool
            _pool, _pool_size = concurrent.futures.ThreadPoolExecutor(n, thread_name_prefix="tinyalex"), n
        return _pool


def over_batch(array, part):
    """Call ``part(images)`` for consecutive slices ``images`` of ``array``'s first axis that cover it,
    on up to ``count()`` threads (the calling thread takes the first slice), and wait for all.

    ``part`` writes its results into arrays made beforehand (``out[images] = ...``); what it returns
    is dropped. Too small an array, one thread, or a CuPy array: one call, ``part(slice(None))``.
    """
    n = array.shape[0]
    w = min(count(), n, array.size // MIN_PART)
    if w <= 1 or backend.xp(array) is not backend.np:
        part(slice(None))
        return
    bounds = [n * i // w for i in range(w + 1)]
    slices = [slice(a, b) for a, b in zip(bounds, bounds[1:])]
    futures = [_executor(w - 1).submit(part, s) for s in slices[1:]]
    try:
        part(slices[0])
    finally:
        for f in futures:
            f.result()  # waits for every part, and raises the first error a part raised
