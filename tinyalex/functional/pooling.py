"""Pooling: overlapping max pooling (paper section 3.4) and average pooling.

Both walk the KH x KW kernel offsets; at each offset one strided slice of the input holds that tap of
every window at once, so the work is vectorised over N, C, OH, OW and the Python loop is only KH*KW
steps long (9 for the paper's 3x3 pools). Max-pool forward reads each tap as a contiguous
run of the input's polyphase components instead (``MaxPool2d.winners``): the same values, faster.
"""
import functools

import numpy as np

from .. import backend, threads
from ..tensor import Function
from . import checks
from .im2col import conv_outsize, pad2d, phases, window


class Pool2d(Function):
    """What max and average pooling share: the kernel offsets (taps) and scattering back through them."""

    def __init__(self, kernel_size, stride, padding):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def taps(self, OH, OW):
        """(k, index) per kernel offset (i, j), k = i*KW + j: the index picks tap k of every window."""
        KH, KW = self.kernel_size
        return [(k, (Ellipsis, *window(k // KW, k % KW, OH, OW, *self.stride))) for k in range(KH * KW)]

    def scatter(self, gy, part):
        """gx = sum over offsets k of ``part(k)`` added where tap k read: the adjoint of the taps."""
        (PH, PW), (H, W) = self.padding, self.saved.padded_shape[2:]
        gx = backend.xp(gy).zeros(self.saved.padded_shape, gy.dtype)
        for k, at in self.taps(*gy.shape[2:]):
            gx[at] += part(k)
        return gx[:, :, PH:H - PH, PW:W - PW]


# Bytes of the polyphase components max-pool forward copies a chunk of images into on the CPU
# (``MaxPool2d.winners``), so that the taps' passes run in the cache; fewer, larger chunks leave fewer
# Python calls, which hold the lock the threads share. Forward on 2 threads, in-process interleaved
# medians, ms at 0.5, 1, 2, 4 and 8 MB (BENCHMARKS.md):
#     128 x 32 x 32 x 32 (the four-layer CNN's pool1)       8.70, 6.59, 5.54, 5.66, 7.54
#     128 x 96 x 32 x 32 (AlexNet-CIFAR's pool1)            25.08, 18.01, 13.31, 12.94, 15.44
#     16 x 96 x 55 x 55 (AlexNet's pool1)                   7.98, 8.10, 7.87, 7.16, 8.69
#     16 x 256 x 27 x 27 (AlexNet's pool2)                  7.51, 7.07, 5.30, 4.98, 5.17
# and inside training steps at 1, 2 and 4 MB: four-layer CNN 89.4, 90.4, 91.1; AlexNet-CIFAR 1045,
# 1030, 1051 (the same within the noise).
CHUNK_BYTES = 2 << 20


class MaxPool2d(Pool2d):
    def forward(self, x):
        xp, (PH, PW), (KH, KW) = backend.xp(x), self.padding, self.kernel_size
        padded_shape = x.shape[:2] + (x.shape[2] + 2 * PH, x.shape[3] + 2 * PW)
        with backend.on_device(backend.device_of(x)):
            y = xp.empty(x.shape[:2] + _out_hw(padded_shape, self.kernel_size, self.stride), x.dtype)
            # argmax = number k = i*KW + j of the winning offset (i, j)
            argmax = xp.empty(y.shape, np.min_scalar_type(KH * KW - 1))
        threads.over_batch(x, lambda i: self.winners(x[i], y[i], argmax[i]))
        self.save_for_backward(argmax=argmax, padded_shape=padded_shape)
        return y

    def winners(self, x, y, argmax):
        """y and argmax of the images x, written into those arrays, a chunk of images at a time.

        The max runs over the taps k = i*KW + j in order, one element-wise pass each over every window
        of the chunk. Tap k of all windows is a strided slice of the padded input (``taps``), whose
        short runs NumPy copies and compares 10-30x slower than contiguous ones; so the chunk is first
        copied into its polyphase components (``phases``, padded with -inf, which never wins), where
        tap k is one contiguous run, and the outputs are computed on the components' Hp x Wp grid, of
        which the first OH x OW places of each plane are kept.
        """
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        xp, (N, C, H, W), (OH, OW) = backend.xp(x), x.shape, y.shape[2:]
        Hp, Wp = -(-(H + 2 * PH) // SH), -(-(W + 2 * PW) // SW)
        plane = C * Hp * Wp
        n = N if backend.is_gpu_array(x) else min(N, max(1, CHUNK_BYTES // (SH * SW * plane * x.itemsize)))
        with backend.on_device(backend.device_of(x)):
            components, grid_y = xp.empty(SH * SW * n * plane, x.dtype), xp.empty(n * plane, x.dtype)
            grid_argmax, k_wins = xp.empty(n * plane, argmax.dtype), xp.empty(n * plane, argmax.dtype)
            wins = xp.empty(n * plane, bool)
        for a in range(0, N, n):
            m = min(n, N - a)
            P = phases(x[a:a + m], SH, SW, PH, PW, -np.inf, out=components[:SH * SW * m * plane].reshape(
                SH, SW, m, C, Hp, Wp)).reshape(SH, SW, -1)
            # the last places of the grid would read past the chunk; no kept output is among them
            L = m * plane - (KH - 1) // SH * Wp - (KW - 1) // SW
            yL, aL, wL, kL = grid_y[:L], grid_argmax[:L], wins[:L], k_wins[:L]
            for k in range(KH * KW):
                i, j = divmod(k, KW)
                start = i // SH * Wp + j // SW
                tap = P[i % SH, j % SW, start:start + L]
                if k == 0:
                    yL[...], aL[...] = tap, 0
                    continue
                # a strict '>' keeps the first maximum on ties; k grows from tap to tap, so
                # max(argmax, k * wins) sets argmax = k where tap k wins: the same as argmax[wins] = k
                # without a masked store, which is ~50x slower in NumPy
                xp.greater(tap, yL, out=wL)
                xp.maximum(aL, xp.multiply(wL, k, out=kL, dtype=kL.dtype), out=aL)
                xp.maximum(yL, tap, out=yL)
            y[a:a + m] = grid_y[:m * plane].reshape(m, C, Hp, Wp)[:, :, :OH, :OW]
            argmax[a:a + m] = grid_argmax[:m * plane].reshape(m, C, Hp, Wp)[:, :, :OH, :OW]

    def backward(self, gy):
        return (self.to_winners(gy) if backend.xp(gy) is np else self.by_taps(gy),)

    def by_taps(self, gy):
        """gx: at each kernel offset k, the gradients of the windows that tap k won, added where it read.

        The clear version, and the GPU's: masked adds, no atomic scatter, so the same bits on every run.
        """
        argmax = self.saved.argmax
        return self.scatter(gy, lambda k: gy * (argmax == k))

    def to_winners(self, gy):
        """gx: every gradient added at its winner's flat index in the padded input, in one np.add.at pass
        over each thread's images.

        The CPU's version, 5x faster than by_taps (one pass over gy instead of three per offset), and
        it adds in the loop reference's order: window by window. np.add.at holds the interpreter's
        lock, but one thread's zeroing and index build run beside the other's adds. The index of tap k
        of window (oh, ow) in plane p is p H W + corner(oh, ow) + offset(k); the first two terms are
        the same every step (``window_corners``), so a step looks up and adds the offsets only.
        """
        (N, C, H, W), (KH, KW), (SH, SW) = self.saved.padded_shape, self.kernel_size, self.stride
        (PH, PW), (OH, OW), argmax = self.padding, gy.shape[2:], self.saved.argmax
        offset = np.arange(KH * KW)
        offset = offset // KW * W + offset % KW
        corners = window_corners(N * C, H, W, OH, OW, SH, SW).reshape(N, C, OH, OW)
        gx = np.empty((N, C, H, W), gy.dtype)

        def part(i):  # images i
            gx[i] = 0
            winner = offset.take(argmax[i])  # take: 1.3x faster than table[argmax]
            winner += corners[i]
            np.add.at(gx.reshape(-1), winner.ravel(), gy[i].ravel())

        threads.over_batch(gx, part)  # cut by the pixels each part zeroes and adds onto
        return gx[:, :, PH:H - PH, PW:W - PW]


@functools.lru_cache(maxsize=4)
def window_corners(planes, H, W, OH, OW, SH, SW):
    """The flat index p H W + oh SH W + ow SW of the corner of window (oh, ow) of plane p, for
    ``planes`` planes of H x W: (planes * OH * OW,), read-only. A few shapes are kept (a network's
    pools), so max-pool's backward does not rebuild them each step."""
    corner = (np.arange(OH) * (SH * W))[:, None] + np.arange(OW) * SW
    corners = (np.arange(planes) * (H * W))[:, None, None] + corner
    corners.flags.writeable = False
    return corners.reshape(-1)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling: y[n, c, oh, ow] = max_{i<KH, j<KW} x[n, c, oh*SH + i - PH, ow*SW + j - PW].

    With stride < kernel the windows overlap: the paper's 3x3 pools at stride 2 (section 3.4), which
    cut top-1 error by 0.4% against 2x2/2, and shrink 55 -> 27 -> 13 -> 6 (see conv_outsize).
    Padding is -inf, so it never wins; it may be at most half the kernel (as in PyTorch), so that
    every window holds a real pixel.

    Backward sends each output's gradient whole to the input that won its window. Tie rule: of equal
    maxima in one window, the first in row-major window order (smallest i, then smallest j) wins,
    like np.argmax; a pixel that wins several overlapping windows collects all their gradients.

    Shapes: x (N, C, H, W) -> (N, C, OH, OW). ``kernel_size``, ``stride`` (default: the kernel size)
    and ``padding`` are ints or (height, width) pairs.
    """
    x, kernel_size, stride, padding = _pool_args("max_pool2d", x, kernel_size, stride, padding)
    if any(2 * p > k for p, k in zip(padding, kernel_size)):
        raise ValueError(f"max_pool2d: padding {padding} must be at most half the kernel size {kernel_size}")
    return MaxPool2d(kernel_size, stride, padding)(x)


class AvgPool2d(Pool2d):
    def forward(self, x):
        x = pad2d(x, *self.padding)
        (_, first), *rest = self.taps(*_out_hw(x.shape, self.kernel_size, self.stride))
        y = x[first].copy()
        for _, at in rest:
            y += x[at]
        y /= len(rest) + 1
        self.save_for_backward(padded_shape=x.shape)
        return y

    def backward(self, gy):
        g = gy / (self.kernel_size[0] * self.kernel_size[1])
        return (self.scatter(gy, lambda k: g),)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling: y[n, c, oh, ow] = 1/(KH*KW) sum_{i<KH, j<KW} x[n, c, oh*SH + i - PH, ow*SW + j - PW].

    Zero padding counts in the mean (PyTorch's default count_include_pad=True). Backward spreads each
    gradient evenly, 1/(KH*KW) to every pixel of its window. Shapes and arguments as max_pool2d.
    """
    x, kernel_size, stride, padding = _pool_args("avg_pool2d", x, kernel_size, stride, padding)
    return AvgPool2d(kernel_size, stride, padding)(x)


def _out_hw(x_shape, kernel_size, stride, padding=(0, 0), op="pool"):
    """(OH, OW) for an input of shape x_shape (padded by ``padding``)."""
    return tuple(conv_outsize(n, k, s, p, op) for n, k, s, p in zip(x_shape[2:], kernel_size, stride, padding))


def _pool_args(op, x, kernel_size, stride, padding):
    """Checked input and (kernel, stride, padding) pairs; errors name ``op``."""
    (x,) = checks.tensors(x)
    checks.floating(op, x)
    checks.ndim(op, x, 4, layout="N, C, H, W")
    kernel_size = checks.pair(op, "kernel_size", kernel_size)
    stride = kernel_size if stride is None else checks.pair(op, "stride", stride)
    padding = checks.pair(op, "padding", padding)
    if min(kernel_size) < 1:
        raise ValueError(f"{op}: kernel_size must be positive, got {kernel_size}")
    _out_hw(x.shape, kernel_size, stride, padding, op)
    return x, kernel_size, stride, padding
