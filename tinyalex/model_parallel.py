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

    def forward(self, x):
        for name in self.column.names():
            if name in self.crossings:
                x = Exchange()(x)
            x = getattr(self.column, name)(x)
        return Exchange(replicated=True)(x)


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
