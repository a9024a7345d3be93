"""The matrix-multiply peak: float32 sgemm, the practical limit of every convolution and FC layer."""
import numpy as np

from .. import backend
from ..tensor import tensor
from .clocks import clock, interleaved, pause_for
from .report import row

SGEMM_SIZE = 2048


def bench_sgemm(device, torch, warmup, repeat):
    """float32 (2048 x 2048) @ (2048 x 2048) with each framework's own matmul: the practical peak.

    The fastest round is taken, not the median: a limit, which other programs on a shared machine
    can only lower.
    """
    rng = backend.default_generator.for_device("cpu")
    a = tensor(rng.standard_normal((SGEMM_SIZE, SGEMM_SIZE), dtype=np.float32), device=device).data
    xp = backend.xp(a)
    rounds = {"tinyalex": lambda: {"sgemm": clock(device)(lambda: xp.matmul(a, a))[0]}}
    if torch is not None:
        ta = torch.from_dlpack(a).clone()
        rounds["torch"] = lambda: {"sgemm": clock(device, torch)(lambda: ta @ ta)[0]}
    fastest = interleaved(rounds, warmup, repeat, summary=min, pause=pause_for(device))
    return row(f"sgemm {SGEMM_SIZE}^3", {k: v["sgemm"] for k, v in fastest.items()}, 2 * SGEMM_SIZE ** 3)
