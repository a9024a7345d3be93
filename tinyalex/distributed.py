"""Data-parallel training over several processes: ``mpiexec -n N tinyalex train ...``.

VGG (section 3.3) trained on 4 GPUs this way: "each batch of training images is split into several
GPU batches, processed in parallel on each GPU. After the GPU batch gradients are computed, they are
averaged to obtain the gradient of the full batch." Here each process is one of those GPUs (or CPUs):

- ``init()`` joins the processes that ``mpiexec`` started (MPI through mpi4py); without ``mpiexec``
  it does nothing and ``rank() == 0``, ``size() == 1``, so one code path serves one process and many;
- ``broadcast_parameters(model)`` starts every process from rank 0's weights;
- ``AveragedGradients(optimizer)`` averages every gradient over the processes before each step, in a
  few flat buffers of at most ``BUCKET_BYTES`` (one call per bucket, not per parameter);
- ``check_same(facts)`` fails at start, naming what differs, when the processes were not given the
  same model, data or options.

The wire: NumPy gradients go over MPI. CuPy gradients go over NCCL (``cupy.cuda.nccl``; its unique id
is sent over MPI by rank 0); where CuPy has no NCCL they are copied to host memory, all-reduced over
MPI and copied back (correct, slower: two copies of every gradient a step).

What differs per process, by design: the slice of each batch (``data.DataLoader(rank=, world_size=)``),
the dropout masks (``seed_by_rank``), and batch norm's statistics, which each process computes over its
own slice and keeps in its own running averages (as PyTorch's DistributedDataParallel does without
SyncBatchNorm); rank 0's are the ones saved.
"""
import os
import sys
import time

import numpy as np

from . import backend

BUCKET_BYTES = 32 << 20  # large enough that per-call latency is small against the bytes; a few for AlexNet
# the variables by which MPICH's and Open MPI's launchers (and PMIx ones, as Slurm's srun) tell a process
# its place; their absence means one process started by hand
_LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")

_comm = None   # mpi4py's COMM_WORLD once init() has joined mpiexec's processes
_nccl = {}     # device -> NCCL communicator among the ranks, made on first use


def launched_by_mpiexec():
    """True when an MPI launcher (mpiexec, mpirun, srun) started this process."""
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


def init():
    """Join the other processes when ``mpiexec`` started this one (else a no-op); returns ``size()``.

    Raises RuntimeError, saying what to install, when mpiexec started the process but mpi4py is absent.
    """
    global _comm
    if _comm is None and launched_by_mpiexec():
        try:
            from mpi4py import MPI
        except ImportError:
            raise RuntimeError("this process was started by mpiexec, but mpi4py is not installed: "
                               "pip install 'tinyalex[mpi]'") from None
        _comm = MPI.COMM_WORLD
    return size()


def rank():
    """This process's number, 0 .. size() - 1 (0 without mpiexec)."""
    return 0 if _comm is None else _comm.Get_rank()


def size():
    """How many processes train together (1 without mpiexec)."""
    return 1 if _comm is None else _comm.Get_size()


def quiet_unless_rank_0():
    """Rank 0 alone prints: every other process's stdout goes to os.devnull (errors still reach stderr)."""
    if rank():
        sys.stdout = open(os.devnull, "w")


# seconds the processes' output is given to reach mpiexec before ``abort`` ends them
ABORT_GRACE_S = 0.5


def abort(status):
    """End every process of the run now, with exit status ``status``: a process that stopped alone
    would leave the others waiting in the next all-reduce forever. What the processes wrote is given
    ABORT_GRACE_S first to reach mpiexec, which stops forwarding their output once it kills them (a
    fresh-clone CI run, two processes started with different options once exited with the right status
    and no error message; not reproduced in 40 tries since, so the cause is inferred)."""
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(ABORT_GRACE_S)
    _comm.Abort(status)


def device_for_rank(device):
    """``"cuda"`` without an index means one GPU per process: the rank's, among the node's GPUs."""
    if device != "cuda" or size() == 1:
        return device
    local = int(os.environ.get("MPI_LOCALRANKID", os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", rank())))
    return f"cuda:{local % backend.cupy().cuda.runtime.getDeviceCount()}"


def seed_by_rank(seed):
    """Give each process its own stream of the engine's generator (dropout masks), from (seed, rank);
    one process keeps the stream that ``manual_seed(seed)`` gave it."""
    if size() > 1:
        backend.manual_seed([seed, rank()])


# ------------------------------------------------------------------ checks at start
def check_same(facts):
    """Raise ValueError naming every entry of ``facts`` (a dict of JSON-able values: the model's name,
    its parameter shapes, the data set's size and checksum, the options) that is not the same on all
    processes, with the value each rank has. Every rank raises the same error."""
    if size() == 1:
        return
    problems = _differences(_comm.allgather(facts))
    if problems:
        raise ValueError("the processes were not started alike: " + "; ".join(problems))


def _differences(every, prefix=""):
    """'<key> differs (rank 0: .., rank 1: ..)' for each key whose values in the dicts ``every`` (one
    per rank) are not all equal; in a nested dict, for the first of its keys that differs."""
    problems = []
    for key in sorted(set().union(*every)):
        values = [f.get(key) for f in every]
        if len({repr(v) for v in values}) == 1:
            continue
        if all(isinstance(v, dict) for v in values):
            problems += _differences(values, f"{prefix}{key} ")[:1]
        else:
            ranks = ", ".join(f"rank {r}: {v!r}" for r, v in enumerate(values))
            problems.append(f"{prefix}{key} differs ({ranks})")
    return problems


def from_rank_0(value):
    """Rank 0's ``value`` (anything picklable) on every process: what rank 0 alone can know, e.g.
    whether a file that it alone writes is there."""
    return value if size() == 1 else _comm.bcast(value, root=0)


def allgather(value):
    """[rank 0's value, rank 1's, ...] (anything picklable) on every process (a collective): e.g. the
    columns of a network that ``model_parallel`` split over the processes."""
    return [value] if size() == 1 else _comm.allgather(value)


def checksum(array):
    """A CRC-32 of an array's bytes (a data set's images), to compare data sets across processes."""
    import zlib
    return zlib.crc32(np.ascontiguousarray(array).view(np.uint8).reshape(-1))


# ------------------------------------------------------------------ collectives on flat buffers
def _buckets(arrays):
    """Group ``arrays`` by (device, dtype) into runs of at most BUCKET_BYTES (an array larger than
    that is a bucket of its own): each bucket becomes one flat buffer and one collective call."""
    groups = {}
    for a in arrays:
        groups.setdefault((backend.device_of(a), a.dtype), []).append(a)
    for group in groups.values():
        bucket, nbytes = [], 0
        for a in group:
            if bucket and nbytes + a.nbytes > BUCKET_BYTES:
                yield bucket
                bucket, nbytes = [], 0
            bucket.append(a)
            nbytes += a.nbytes
        yield bucket


def _flat_collective(arrays, collective):
    """Apply ``collective(flat)`` (in place, on a 1-d buffer) to the concatenation of ``arrays``, a
    bucket at a time, and copy the result back into ``arrays``."""
    for bucket in _buckets(arrays):
        with backend.on_device(backend.device_of(bucket[0])):
            xp = backend.xp(bucket[0])
            flat = xp.concatenate([a.reshape(-1) for a in bucket])
            collective(flat)
            start = 0
            for a in bucket:
                a[...] = flat[start:start + a.size].reshape(a.shape)
                start += a.size


def _allreduce_sum(flat):
    """Sum ``flat`` over the processes, in place: NCCL for a CuPy array (host memory without NCCL)."""
    if isinstance(flat, np.ndarray):
        from mpi4py import MPI
        _comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        return
    communicator = _nccl_for(backend.device_of(flat))
    if communicator is None:  # the host-memory fallback
        host = backend.to_numpy(flat)
        _allreduce_sum(host)
        flat.set(host)
        return
    nccl = backend.cupy().cuda.nccl
    kind = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}[flat.dtype]
    stream = backend.cupy().cuda.get_current_stream()
    communicator.allReduce(flat.data.ptr, flat.data.ptr, flat.size, kind, nccl.NCCL_SUM, stream.ptr)


def _nccl_for(device):
    """The NCCL communicator of the processes' GPUs (one per process), or None where CuPy lacks NCCL."""
    if device not in _nccl:
        try:
            from cupy.cuda import nccl
        except ImportError:
            nccl = None
        if nccl is None or not getattr(nccl, "available", True):
            _nccl[device] = None
        else:
            uid = _comm.bcast(nccl.get_unique_id() if rank() == 0 else None, root=0)
            with backend.on_device(device):
                _nccl[device] = nccl.NcclCommunicator(size(), uid, rank())
    return _nccl[device]


def average_gradients(parameters):
    """Replace each parameter's gradient by its mean over the processes (after backward, before the
    step). A parameter without a gradient takes part with zeros, so that every process sends the same
    buffers."""
    if size() == 1:
        return
    for p in parameters:
        if p.grad is None:
            with backend.on_device(p.device):
                p.grad = backend.xp(p.data).zeros_like(p.data)
    grads = [p.grad for p in parameters]

    def mean(flat):
        _allreduce_sum(flat)
        flat /= size()

    _flat_collective(grads, mean)


def broadcast_parameters(model):
    """Copy rank 0's parameters and buffers (batch norm's statistics) into every process's ``model``."""
    if size() == 1:
        return
    arrays = [p.data for p in model.parameters()] + list(model.buffers.values())

    def from_rank_0(flat):
        if isinstance(flat, np.ndarray):
            _comm.Bcast(flat, root=0)
        else:  # a rare call: through host memory rather than NCCL's broadcast
            host = backend.to_numpy(flat)
            _comm.Bcast(host, root=0)
            flat.set(host)

    _flat_collective(arrays, from_rank_0)


def sum_running(running, names):
    """``metrics.Running`` totals (the count and the sums ``names``) over all processes, as a new
    Running; a process that saw no batch adds zeros."""
    if size() == 1:
        return running
    from .metrics import Running
    totals = np.array([running.count] + [float(backend.to_numpy(running.sums.get(n, 0.0))) for n in names])
    _allreduce_sum(totals)
    total = Running()
    total.add(int(totals[0]), **dict(zip(names, totals[1:].tolist())))
    return total


class AveragedGradients:
    """An optimiser whose ``step()`` first averages the gradients over the processes (ChainerMN's
    ``create_multi_node_optimizer``): the training loop stays as it is. Everything else (``lr``,
    ``state_dict``, ``zero_grad``) is the wrapped optimiser's; give a schedule the wrapped one."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def step(self):
        average_gradients(self.optimizer.params)
        self.optimizer.step()

    def __getattr__(self, name):
        return getattr(self.optimizer, name)


# ------------------------------------------------------------------ resuming
def generator_states(state):
    """What a checkpoint keeps of the processes' generators besides rank 0's ``state``: nothing for
    one process, else the count and every rank's state (each has its own dropout stream)."""
    if size() == 1:
        return {}
    return {"processes": size(), "rank_rng": allgather(state)}


def resumed_generator_state(extra, state):
    """This process's generator state in a checkpoint's ``extra`` (``state``: rank 0's). A run saved
    with another number of processes cannot resume exactly (its batches were cut otherwise): ValueError."""
    saved = extra.get("processes", 1)
    if saved != size():
        raise ValueError(f"the checkpoint was trained by {saved} process(es) and this run has {size()}; "
                         f"resume it with mpiexec -n {saved}" if saved > 1 else
                         f"the checkpoint was trained by 1 process and this run has {size()}; resume it "
                         "without mpiexec")
    return state if size() == 1 else extra["rank_rng"][rank()]
