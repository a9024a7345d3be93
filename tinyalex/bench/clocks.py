"""Clocks: a timer per framework and device, and interleaved rounds so that a shared machine's noise
falls on both frameworks alike."""
import statistics
import time
from functools import partial

from .. import backend


def clock(device, torch=None):
    """A ``measure(fn) -> (milliseconds, fn())`` for tinyalex (``torch=None``) or PyTorch on ``device``.

    CPU: the wall clock (NumPy and PyTorch CPU calls return when the work is done). GPU: CUDA events
    recorded on the device's current stream around ``fn``, after a synchronisation so that earlier
    queued work is not counted, and read once the end event has completed.
    """
    device = backend.parse_device(device)
    if device == "cpu":
        def measure(fn):
            start = time.perf_counter()
            out = fn()
            return (time.perf_counter() - start) * 1e3, out
        return measure
    if torch is None:
        cp = backend.cupy()
        event, elapsed, on_device = cp.cuda.Event, cp.cuda.get_elapsed_time, partial(backend.on_device, device)
        synchronize = partial(backend.synchronize, device)
    else:
        event, on_device = partial(torch.cuda.Event, enable_timing=True), partial(torch.cuda.device, device)
        synchronize, elapsed = partial(torch.cuda.synchronize, device), lambda start, end: start.elapsed_time(end)

    def measure(fn):
        with on_device():
            synchronize()
            start, end = event(), event()
            start.record()
            out = fn()
            end.record()
            end.synchronize()
        return elapsed(start, end), out
    return measure


# Seconds to wait before each framework's round on a CPU. After a call, NumPy's OpenBLAS threads and
# PyTorch's OpenMP threads spin for up to ~0.1 s waiting for more work, and take the cores from the
# other framework's next call: without the wait PyTorch's 2048^3 sgemm measured 143 ms instead of 94.
# After the wait one untimed round wakes this framework's own threads, as they are in a training step.
CPU_PAUSE_S = 0.2


def interleaved(rounds, warmup, repeat, summary=statistics.median, pause=0.0):
    """Run ``rounds`` = {framework: one_round} in turn, ``warmup + repeat`` times; a summary per phase.

    ``one_round()`` returns {phase: milliseconds}. The first ``warmup`` rounds (caches, allocator
    pools, lazy initialisation) are dropped. Returns {framework: {phase: summary of the ms}}, the
    median unless ``summary`` says otherwise. ``pause``: seconds slept before each round when more
    than one framework takes turns (``CPU_PAUSE_S`` on a CPU), then one untimed round.
    """
    times = {name: {} for name in rounds}
    for r in range(warmup + repeat):
        for name, one_round in rounds.items():
            if len(rounds) > 1 and pause:
                time.sleep(pause)
                one_round()
            for phase, ms in one_round().items():
                if r >= warmup:
                    times[name].setdefault(phase, []).append(ms)
    return {name: {phase: summary(v) for phase, v in phases.items()} for name, phases in times.items()}


def pause_for(device):
    """The pause between two frameworks' rounds: CPU_PAUSE_S on a CPU; none on a GPU (its clock is
    the device's events, after a synchronisation)."""
    return CPU_PAUSE_S if backend.parse_device(device) == "cpu" else 0.0
