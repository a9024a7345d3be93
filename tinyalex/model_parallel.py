"""The paper's two columns as two processes: ``mpiexec -n 2``, one column of AlexNet on each.

Krizhevsky et al. (section 3.2) put half of every layer's kernels on each of two GPUs, "and the GPUs
communicate only in certain layers": before conv3, fc6, fc7 and fc8. Here each GPU is a process.
Every process builds the same ``TwoColumnNet`` (same seed, same weights) and ``own_column(net)`` keeps
the column of its rank; at each crossing an ``Exchange`` sends this column's maps to the other process
and receives the other's, so the layer sees the concatenation (column 0, column 1) as in one process.

Backward, the gradient of the concatenation holds a part for each column: the other column's part is
sent back to it, and this column's gradient is its own part plus the part the other process sent
(both columns' next layers read this column's maps). At the output the two halves of fc8 are
gathered on both processes, which then compute the same loss: the other process's gradient there is
a copy of this one's, not a further term, so only the own part flows back (``replicated``).

What crosses the wire per image and direction is the maps at the crossings (``net.transfers``), not
the parameters: each process's optimiser steps only its own column's parameters, and both processes
must see the same images in the same order (no ``rank=`` slicing of the data).

Checkpoints hold the whole network in the one-process names (``columns.0.conv1.weight``, ...; the
velocities numbered through both columns, as one optimiser of the whole net numbers them), so
``tinyalex evaluate`` and a one-process ``restore`` read them unchanged: ``ColumnOnProcess.state_dict()``
and ``ColumnOptimizer.state_dict()`` gather the other column's part (collectives: both processes call
them), and their ``load_state_dict(whole)`` take this column's part of the whole network's state.
"""
import numpy as np

from . import backend, distributed, nn
from .tensor import Function


def _swap(array, shape):
    """Send ``array`` to the other process and return what it sends (of ``shape``, same dtype and device).

    The buffers go through host memory: an MPI built without CUDA support cannot read GPU memory."""
    from mpi4py import MPI
    host = np.ascontiguousarray(backend.to_numpy(array))
    received = np.empty(shape, host.dtype)
    other = 1 - distributed.rank()
    MPI.COMM_WORLD.Sendrecv(host, dest=other, recvbuf=received, source=other)
    return backend.xp(array).asarray(received)


class Exchange(Function):
    """At a crossing: this column's maps h (N, C_own, ...) -> both columns' maps (N, C_0 + C_1, ...).

    backward: gy (N, C_0 + C_1, ...) -> gy's own part + the other process's gradient of these maps
    (only the own part when ``replicated``: the consumers on both processes are one computation).
    """

    def __init__(self, replicated=False):
        self.replicated = replicated

    def forward(self, h):
        from mpi4py import MPI
        mine = distributed.rank()
        # the halves may differ in size (fc8 of an odd number of classes), so the shapes go first
        other_shape = MPI.COMM_WORLD.sendrecv(h.shape, dest=1 - mine, source=1 - mine)
        other = _swap(h, other_shape)
        self.save_for_backward(own=slice(0, h.shape[1]) if mine == 0 else slice(other_shape[1], None),
                               theirs=slice(h.shape[1], None) if mine == 0 else slice(0, other_shape[1]))
        return backend.xp(h).concatenate((h, other) if mine == 0 else (other, h), axis=1)

    def backward(self, gy):
        own = gy[:, self.saved.own]
        if self.replicated:
            return (own,)
        return (own + _swap(gy[:, self.saved.theirs], own.shape),)


class ColumnOnProcess(nn.Module):
    """One column of a ``TwoColumnNet`` (``column``: its layers, the same parameter objects), run on
    this process; the other column runs on the other process, and they exchange at ``crossings``.

    forward: images (N, 3, H, W), the same on both processes -> logits (N, classes), the same on both.
    """

    def __init__(self, column, crossings):
        super().__init__()
        self.column = column
        self.crossings = tuple(crossings)
        self.prefix = f"columns.{distributed.rank()}."  # this column's names in the whole network

    def forward(self, x):
        for name in self.column.names():
            if name in self.crossings:
                x = Exchange()(x)
            x = getattr(self.column, name)(x)
        return Exchange(replicated=True)(x)

    def state_dict(self):
        """The whole two-column network's parameters and buffers, in its one-process names and order
        (both columns' parameters, then both columns' buffers), on every process (a collective)."""
        state, n = list(self.column.state_dict().items()), len(self.column.parameters())
        mine = [{self.prefix + name: a for name, a in part} for part in (state[:n], state[n:])]
        every = distributed.allgather(mine)
        return {name: a for part in (0, 1) for column in every for name, a in column[part].items()}

    def load_state_dict(self, state, strict=True):
        """Load this column's part of the whole network's ``state`` (one-process names); the other
        column's part is the other process's. As ``Module.load_state_dict``, all or nothing."""
        other = f"columns.{1 - distributed.rank()}."
        unexpected = sorted(name for name in state if not name.startswith((self.prefix, other)))
        if strict and unexpected:
            raise ValueError(f"load_state_dict: names that are in neither column: {', '.join(unexpected[:5])}")
        return self.column.load_state_dict({name[len(self.prefix):]: a for name, a in state.items()
                                            if name.startswith(self.prefix)}, strict)


def own_column(net):
    """This process's column of the two-column ``net`` (``alexnet(columns=2)``, ``alexnet_cifar()``),
    as a ``ColumnOnProcess``; call under ``mpiexec -n 2`` on both processes with the same ``net``.

    Raises ValueError unless two processes run (``distributed.init()`` joins them) and ``net`` has
    two columns.
    """
    from .models import TwoColumnNet
    if not isinstance(net, TwoColumnNet) or len(net.columns) != 2:
        raise ValueError(f"own_column: expected a TwoColumnNet of 2 columns (alexnet(columns=2)), "
                         f"got {type(net).__name__}")
    if distributed.init() != 2:
        raise ValueError(f"own_column: one column per process needs 2 processes (mpiexec -n 2), "
                         f"got {distributed.size()}")
    return ColumnOnProcess(net.columns[distributed.rank()], net.crossings)


class ColumnOptimizer:
    """This process's optimiser of its own column (``optimizer``, e.g. an SGD of its parameters) whose
    state is the whole network's: ``state_dict()`` gathers both columns' velocities (a collective),
    numbered ``velocity.0 ..`` through column 0 then column 1 as one SGD of the whole net numbers them;
    ``load_state_dict(whole)`` takes this column's. Everything else (``step``, ``lr``) is ``optimizer``'s.
    Made on both processes at once: they tell each other how many parameters each column has.
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.counts = distributed.allgather(len(optimizer.params))  # parameters of column 0, column 1
        self.first = sum(self.counts[:distributed.rank()])  # this column's first one in the whole net

    def state_dict(self):
        every = distributed.allgather(self.optimizer.state_dict())
        velocities = [state[f"velocity.{i}"] for state, n in zip(every, self.counts) for i in range(n)]
        rates = {k: v for k, v in every[0].items() if not k.startswith("velocity.")}  # alike on both
        return {**rates, **{f"velocity.{i}": v for i, v in enumerate(velocities)}}

    def load_state_dict(self, state):
        velocities = [k for k in state if k.startswith("velocity.")]
        if len(velocities) != sum(self.counts):
            raise ValueError(f"ColumnOptimizer.load_state_dict: the whole network has {sum(self.counts)} "
                             f"parameters, the state holds {len(velocities)} velocities")
        own = {k: v for k, v in state.items() if not k.startswith("velocity.")}
        for i in range(len(self.optimizer.params)):
            if f"velocity.{self.first + i}" in state:  # else the optimiser's check names what is missing
                own[f"velocity.{i}"] = state[f"velocity.{self.first + i}"]
        self.optimizer.load_state_dict(own)

    def __getattr__(self, name):
        return getattr(self.optimizer, name)
