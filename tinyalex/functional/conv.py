"""Convolution as one matrix product: conv2d with groups (paper sections 3.2, 3.5).

A convolution slides every filter over every receptive field; the window geometry (output sizes,
im2col, col2im, the shared rows) is in ``im2col.py``, and conv2d is im2col + one GEMM per group.
"""
import functools

from .. import backend, threads
from ..tensor import Function
from . import checks, winograd
from .bias import bias_gradient
from .im2col import (add_columns, conv_outsize, fill_columns, images_first, pad2d, padded_images_last, row_shifts,
                     shared_rows)
from .im2col import col2im, im2col  # noqa: F401  (kept importable from here, where they used to live)
from .space_to_depth import winograd_conv


# Bytes of im2col columns built at a time on the CPU. One small buffer serves every chunk of images,
# instead of a whole-batch matrix of hundreds of MB (315 MB at conv2 of AlexNet-CIFAR, batch 128)
# page-faulted in afresh at each call and kept until backward; a chunk's columns and output stay in
# the cache between the copy, the GEMM and the move back to NCHW. A GPU takes as many images as
# 1 GB of columns holds: the whole batch for AlexNet at 128, not for VGG at 224.
CPU_CHUNK_BYTES = 8 << 20
GPU_CHUNK_BYTES = 1 << 30

# Bytes of a chunk's shared rows and products in forward on the CPU (forward_part), unless that
# leaves the wide GEMMs of longer columns fewer than MIN_ROW_COLUMNS columns (n*OW). In-process A/B, 2 threads, forward ms
# at 1, 2 and 4 MB: four-layer CNN's conv1 6.6, 6.4, 7.5; AlexNet-CIFAR's conv1 19.4, 18.5, 20.6;
# 32 -> 32 maps at 15x15 16.9, 16.7, 15.6. AlexNet's conv1 at 2, 8 and 14 MB: 31.8, 28.6, 28.3, one
# image of 55 columns a chunk at 2 MB (BENCHMARKS.md).
ROWS_CHUNK_BYTES = 2 << 20
MIN_ROW_COLUMNS = 128

# Columns of at most this many values (C/groups * KH * KW) are built with the images first in backward,
# and forward makes their GEMMs one image's output row at a time (see Conv2d)
IMAGES_FIRST_VALUES = 256

# The weight gradient alone of short columns, of at most SHIFT_MAPS maps a group, is summed from the
# rows' shifts in blocks of at most SHIFT_PIXELS outputs (Conv2d.filter_gradient_by_shifts). One
# thread's images (ms, im2col's columns -> shifts in blocks of 256, 512, 1024, 2048 pixels):
#     3 -> 32 maps, 5x5, 32x32, 64 images (the four-layer CNN's conv1)   6.62 -> 4.85, 4.90, 5.22, 5.15
#     3 -> 64 maps, 5x5, 32x32, 64 images                                10.87 -> 8.97, 9.06, 9.54, 9.62
#     3 -> 32 maps, 3x3, 32x32, 64 images                                2.35 -> 1.81, 1.78, 1.92, 1.94
#     3 -> 32 maps, 5x5, 112x112, 8 images                               9.18 -> 6.75, 6.40, 7.29, 8.05
#     3 -> 64 maps, 3x3, 224x224, 4 images (VGG's conv1_1)               19.38 -> 12.28, 11.68, 12.29, 31.40
#     3 -> 96 maps, 5x5, 32x32, 64 images (AlexNet-CIFAR's conv1)        16.35 -> 28.50, 28.76, 28.69, 29.06
# OpenBLAS ran the thin products of 96 maps at half the rate of 64 (31.5 against 52.2 GFLOP/s for
# (15, 1024) @ (1024, N) on one thread), and long sums slowly: (9, 4096) @ (4096, 64) at 17.7.
SHIFT_MAPS = 64
SHIFT_PIXELS = 512


class Conv2d(Function):
    """im2col + GEMM, a chunk of images at a time, in one part of the batch per thread.

    forward lowers the images along the width only (``shared_rows``, Cho and Brand's MEC): the columns
    of each image's output row are a view into KW shifted copies of the input rows, and
      - short columns (at most ``IMAGES_FIRST_VALUES`` values, the first layers): one GEMM per image,
        group and output row, (O/G, KH*Cg*KW) @ (KH*Cg*KW, OW), written straight into that row of y,
        which is a matrix in NCHW too, then the bias added;
      - longer ones: one GEMM per group and output row over the chunk's images side by side,
        (O/G, KH*Cg*KW) @ (KH*Cg*KW, n*OW), then the products, (G, OH, O/G, n*OW), moved to NCHW with
        the bias. Narrow GEMMs ran slower there (AlexNet's conv1, 55 columns an image: 0.94x).
    In-process A/B on 2 threads, forward, im2col's columns -> shared rows (ms, BENCHMARKS.md):
        3 -> 32 maps, 5x5, 32x32, 128 images (the four-layer CNN's conv1)   10.5 -> 6.4; by rows 1.21-1.28x
        3 -> 96 maps, 5x5, 32x32, 128 images (AlexNet-CIFAR's conv1)        20.7 -> 18.5; by rows 0.99-1.07x
        32 -> 32 maps, 5x5, 15x15, 128 images                               24.1 -> 16.7
        64 -> 128 maps, 3x3, 112x112, 4 images (VGG's conv2_1)              59.4 -> 55.9
        3 -> 96 maps, 11x11 at stride 4, 227x227, 16 images (AlexNet's)     30.0 -> 28.9
    A chunk's copy of rows and its products take at most ROWS_CHUNK_BYTES on the CPU.

    backward builds each chunk's im2col columns again, from the input, in one of two layouts:
      - images last (cuda-convnet's): the images are padded into one (C, H, W, n) array
        (``padded_images_last``), the columns are (C*KH*KW, OH*OW*n), and one GEMM per group gives
        gW from gy moved to (O, OH*OW*n). A window's slice is then runs of OW*n values, which copy fast.
      - images first (Caffe's): columns (n, C*KH*KW, OH*OW), one GEMM per image and group with gy as
        it is, NCHW. Taken when a column is short (``IMAGES_FIRST_VALUES``), where the move cost more
        than the copy and the GEMM together, and for a stride along the rows, whose windows have no
        runs to copy in either layout.
    (Backward by the shared rows measured slower: its gy must move to (OH, O, n, OW) first, and its
    input gradient adds KH overlapping blocks back; AlexNet-CIFAR's conv1 24.2 -> 32.0 ms.) The weight
    gradient alone of short columns and few maps, at a stride of 1 along the rows, is summed from the
    rows' shifts instead (``filter_gradient_by_shifts``, SHIFT_MAPS).
    In-process A/B on one thread, 64 images, forward / backward with gx (images last ms -> images
    first), when forward built the columns too:
        3 -> 32 maps, 5x5, 32x32 (the four-layer CNN's conv1)      15.7 -> 8.2 / 26.4 -> 20.4
        3 -> 96 maps, 5x5, 32x32 (AlexNet-CIFAR's conv1)           35.1 -> 20.1 / 52.9 -> 38.9
        8 -> 32, 5x5, 32x32 (200 values)                           27.7 -> 24.2 / 54.2 -> 51.2
        16 -> 32, 3x3, 32x32 (144 values)                          19.0 -> 14.7 / 38.4 -> 40.5
        32 -> 32, 5x5, 15x15 (800 values)                          12.5 -> 17.3 / 34.0 -> 48.8
        96 -> 256 in 2 groups, 5x5, 16x16 (AlexNet-CIFAR's conv2)  136 -> 164 / 319 -> 421
    On the CPU the batch is first cut into one part per thread (``threads.slices``), each part's
    chunks go through copy, GEMM and move on their own core with a one-thread BLAS
    (``threads.in_parallel(gemm=True)``), and backward sums the parts' weight gradients.
    """

    algorithm = "im2col"

    def __init__(self, stride, padding, groups):
        self.stride, self.padding, self.groups = stride, padding, groups

    def forward(self, x, w, b=None):
        (N, _, H, W), (O, Cg, KH, KW), G = x.shape, w.shape, self.groups
        (SH, SW), (PH, PW) = self.stride, self.padding
        OH, OW = conv_outsize(H, KH, SH, PH), conv_outsize(W, KW, SW, PW)
        self.images_first = SW > 1 or Cg * KH * KW <= IMAGES_FIRST_VALUES
        y = backend.xp(x).empty((N, O, OH, OW), x.dtype)
        # the filters as (G, 1, O/G, KH*Cg*KW), their taps in the shared rows' order (i, c, j)
        wr = w.reshape(G, O // G, Cg, KH, KW).transpose(0, 1, 3, 2, 4).reshape(G, 1, O // G, -1)
        parts = threads.slices(x, x.size * KH * KW)
        threads.in_parallel([functools.partial(self.forward_part, x, wr, KH, KW, b, y, images) for images in parts],
                            gemm=True)
        self.save_for_backward(x=x, w=w, parts=parts)
        return y

    def forward_part(self, x, wr, KH, KW, b, y, images):
        """y[images] from x[images], a chunk at a time (see the class docstring for the two ways)."""
        (G, _, Og, K), (_, C, H, _), (_, O, OH, OW) = wr.shape, x.shape, y.shape
        xp, (PH, PW) = backend.xp(x), self.padding
        if backend.is_gpu_array(x):
            per_image = C * KH * KW * OH * OW  # a GPU's matmul may copy the overlapping view whole
        else:
            per_image = (C * (H + 2 * PH) * KW + O * OH) * OW  # the rows and the products
        by_rows = K <= IMAGES_FIRST_VALUES
        least = 1 if by_rows else -(-MIN_ROW_COLUMNS // OW)
        for n in self.chunks(x, images, per_image, ROWS_CHUNK_BYTES, least=least):
            rows = shared_rows(pad2d(x[n], PH, PW), KH, KW, *self.stride, G)  # (n, G, OH, K, OW)
            if by_rows:
                out = y[n].reshape(-1, G, Og, OH, OW).transpose(0, 1, 3, 2, 4)  # (n, G, OH, O/G, OW): y's rows
                xp.matmul(wr, rows, out=out)
                if b is not None:
                    y[n] += b.reshape(O, 1, 1)  # while the chunk's outputs are in the cache
                continue
            # (G, OH, K, n*OW): the chunk's images side by side, one wide GEMM per group and row
            yn = xp.matmul(wr, rows.transpose(1, 2, 3, 0, 4).reshape(G, OH, K, -1))
            yn = yn.reshape(G, OH, Og, -1, OW).transpose(3, 0, 2, 1, 4)  # (n, G, O/G, OH, OW)
            out = y[n].reshape(yn.shape)
            if b is None:
                out[...] = yn
            else:
                xp.add(yn, b.reshape(G, Og, 1, 1), out=out)

    def backward(self, gy):
        need_gx, need_gW = self.needs_input_grad[:2]
        xp = backend.xp(gy)
        # a GEMM is skipped for an input that needs no gradient (the images at the first layer)
        gx = xp.empty((gy.shape[0],) + self.inputs[0].shape[1:], gy.dtype) if need_gx else None
        calls = [functools.partial(self.backward_part, gy, gx, need_gW, images) for images in self.saved.parts]
        gWts = threads.in_parallel(calls, gemm=True)
        gW = None
        if need_gW:
            gW = xp.ascontiguousarray(sum(gWts[1:], gWts[0]).swapaxes(1, 2)).reshape(self.saved.w.shape)
        if len(self.inputs) == 2:
            return gx, gW
        return gx, gW, bias_gradient(gy) if self.needs_input_grad[2] else None

    def backward_part(self, gy, gx, need_gW, images):
        """gx of x[images] (written into ``gx`` unless it is None) and their share of gW (transposed), a
        chunk at a time."""
        if gx is None and need_gW and self.images_first and self.stride[0] == 1 and self.saved.w.shape[0] // self.groups <= SHIFT_MAPS:
            return self.filter_gradient_by_shifts(gy, images)
        x, w, G, (PH, PW) = self.saved.x, self.saved.w, self.groups, self.padding
        (O, _, KH, KW), (_, _, OH, OW) = w.shape, gy.shape
        xp = backend.xp(gy)
        chunks = self.chunks(x, images, x.shape[1] * KH * KW * OH * OW)
        xcs = [pad2d(x[n], PH, PW) if self.images_first else padded_images_last(x[n], PH, PW) for n in chunks]
        w = w.reshape(G, O // G, -1)
        gWt = xp.zeros(w.swapaxes(1, 2).shape, w.dtype) if need_gW else None  # gW transposed: (G, Cg*KH*KW, O/G)
        for n, xc, col in zip(chunks, xcs, self.columns(xcs, KH, KW, OH, OW, fill=need_gW)):
            # gy of these images shaped like forward's product
            if self.images_first:
                g = gy[n].reshape(col.shape[0], G, O // G, -1)
            else:
                g = xp.ascontiguousarray(gy[n].transpose(1, 2, 3, 0)).reshape(G, O // G, -1)
            if need_gW:
                # dL/dW = gy col^T, summed over the chunks, as its transpose col gy^T: OpenBLAS ran
                # that 1.06-1.36x faster on the first layers' and on wide layers' shapes (BENCHMARKS.md)
                gWn = xp.matmul(col, g.swapaxes(-1, -2))
                gWt += gWn.sum(axis=0) if self.images_first else gWn
            if gx is not None:
                # dL/dcol = W^T gy, written over the columns (no longer needed), then added onto the pixels
                xp.matmul(w.swapaxes(1, 2), g, out=col)
                gx[n] = self.onto_pixels(col, xc, KH, KW, OH, OW)
        return gWt

    def filter_gradient_by_shifts(self, gy, images):
        """backward_part when only gW is asked for (the first layer), from the KW shifted copies of the
        input rows S (``row_shifts``) instead of im2col's columns, for a stride of 1 along the rows:

            gW[o, c, i, j] = sum_m sum_(oh, ow) gy[m, o, oh, ow] S[m, c, j, oh + i, ow]

        For each kernel row i and block of output rows, S[m, :, :, i + rows] is a matrix, rows (c, j)
        and columns (oh, ow), of one row stride: each image, group and block of at most SHIFT_PIXELS
        outputs takes KH GEMMs (Cg*KW, pixels) @ (pixels, O/G), and the copy holds KH times fewer
        values than the columns.
        """
        x, w, G, (PH, PW) = self.saved.x, self.saved.w, self.groups, self.padding
        (O, Cg, KH, KW), (_, _, OH, OW), xp = w.shape, gy.shape, backend.xp(gy)
        rows = max(1, SHIFT_PIXELS // OW)
        blocks = [(lo, k, r) for lo, k, r in ((0, OH // rows, rows), (OH // rows * rows, 1, OH % rows)) if k * r]
        gWt = 0
        for n in self.chunks(x, images, x.shape[1] * KW * (x.shape[2] + 2 * PH) * OW):
            S = xp.ascontiguousarray(row_shifts(pad2d(x[n], PH, PW), KW, self.stride[1]))  # (m, C, KW, Hp, OW)
            m, c, j, h, ow = S.strides
            for lo, k, r in blocks:
                # (m, block, G, KH, Cg*KW, pixels) @ (m, block, G, 1, pixels, O/G)
                shifts = xp.lib.stride_tricks.as_strided(S[:, :, :, lo:], (S.shape[0], k, G, KH, Cg * KW, r * OW),
                                                         (m, r * h, Cg * c, h, j, ow))
                g = gy[n, :, lo:lo + k * r].reshape(-1, G, O // G, k, r * OW).transpose(0, 3, 1, 4, 2)[:, :, :, None]
                gWt = gWt + xp.matmul(shifts, g).sum(axis=(0, 1))  # (G, KH, Cg*KW, O/G)
        return gWt.reshape(G, KH, Cg, KW, O // G).swapaxes(1, 2).reshape(G, Cg * KH * KW, O // G)

    def onto_pixels(self, col, xc, KH, KW, OH, OW):
        """The unpadded sum of the columns col onto the pixels of the padded images xc: (n, C, H, W)."""
        (PH, PW), xp = self.padding, backend.xp(col)
        if self.images_first:
            gxc = add_columns(xp.zeros_like(xc), col.reshape(xc.shape[:2] + (KH, KW, OH, OW)), *self.stride, lead=2)
            return gxc[:, :, PH:gxc.shape[2] - PH, PW:gxc.shape[3] - PW]
        gxc = add_columns(xp.zeros_like(xc), col.reshape(-1, KH, KW, OH, OW, xc.shape[3]), *self.stride)
        return images_first(gxc, PH, PW)

    @staticmethod
    def chunks(x, images, per_image, cpu_bytes=None, least=1):
        """Consecutive slices of x[images] (absolute positions in the batch) of as many images as fit
        ``cpu_bytes`` (default CPU_CHUNK_BYTES; GPU_CHUNK_BYTES on a GPU) at ``per_image`` values
        each, but ``least`` images at least."""
        start, stop, _ = images.indices(x.shape[0])
        budget = GPU_CHUNK_BYTES if backend.is_gpu_array(x) else CPU_CHUNK_BYTES if cpu_bytes is None else cpu_bytes
        chunk = max(1, least, budget // (per_image * x.itemsize))
        return [slice(a, min(a + chunk, stop)) for a in range(start, stop, chunk)]

    def columns(self, xcs, KH, KW, OH, OW, fill=True):
        """The im2col columns of each chunk's padded images xc, all in one reused buffer, shaped for
        the GEMMs of the groups: (G, Cg*KH*KW, OH*OW*n) from xc (C, H, W, n) with the images last,
        (n, G, Cg*KH*KW, OH*OW) from xc (n, C, H, W) with them first. ``fill=False`` hands out the
        buffer without copying into it."""
        xp, G = backend.xp(xcs[0]), self.groups
        channel_axis, image_axis = (1, 0) if self.images_first else (0, 3)
        C = xcs[0].shape[channel_axis]
        buffer = xp.empty(C * KH * KW * OH * OW * max(xc.shape[image_axis] for xc in xcs), xcs[0].dtype)
        for xc in xcs:
            m = xc.shape[image_axis]
            col = buffer[:C * KH * KW * OH * OW * m]
            if self.images_first:
                col = col.reshape(m, C, KH, KW, OH, OW)
                if fill:
                    fill_columns(col, xc, *self.stride, lead=2)
                yield col.reshape(m, G, -1, OH * OW)
            else:
                col = col.reshape(C, KH, KW, OH, OW, m)
                if fill:
                    fill_columns(col, xc, *self.stride)
                yield col.reshape(G, -1, OH * OW * m)


def check_groups(op, C, O, groups):
    """Raise ValueError naming ``op`` unless ``groups`` is a positive int (not a bool) that divides both
    the C input and the O output channels: each group sees C/groups channels and makes O/groups maps."""
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if C % groups or O % groups:
        raise ValueError(f"{op}: input channels ({C}) and output channels ({O}) must both be divisible by groups={groups}")


def conv2d(x, w, b=None, stride=1, padding=0, groups=1, algorithm="auto"):
    """2-D convolution (cross-correlation, as in every deep-learning library) with optional groups.

        y[n, o, oh, ow] = b[o] + sum_{c, i, j} w[o, c, i, j] * x[n, g*Cg + c, oh*SH + i - PH, ow*SW + j - PW]

    where g = o // (O/groups) is the group of filter o, Cg = C/groups its input channels, and x is 0
    outside the image (zero padding). ``groups=2`` is the paper's two-GPU network (section 3.2,
    Figure 2): layers 2, 4 and 5 see only the kernel maps on their own GPU.

    Shapes: x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) -> y (N, O, OH, OW) with
    OH = conv_outsize(H, KH, SH, PH) and likewise OW. ``stride`` and ``padding`` are ints or
    (height, width) pairs. Computed as im2col + one matrix product per group (forward with the
    columns lowered along the width only, an output row at a time: ``Conv2d``); backward:
    gW = gy col^T, gx = col2im(W^T gy), gb = gy summed over N, OH, OW.

    ``algorithm``: "im2col" (the above, the reference), "winograd" (square 3x3 or 5x5 filters at
    stride 1: ``winograd.Winograd2d``, the same results in fewer multiplications; a stride s whose
    filters, cut into s x s polyphase components, are 3x3 or 5x5: ``space_to_depth``) or "auto"
    (``winograd.choose``'s measured rule: Winograd for wide 3x3 layers, the 5x5 layers of 32 to 128
    channels and AlexNet's conv1, im2col elsewhere).
    """
    x, w, b = checks.tensors(x, w, b)
    checks.floating("conv2d", x, w, b)
    checks.ndim("conv2d", x, 4, layout="N, C, H, W")
    checks.ndim("conv2d", w, 4, "weight", layout="O, C/groups, KH, KW")
    (_, C, H, W), (O, Cg, KH, KW) = x.shape, w.shape
    check_groups("conv2d", C, O, groups)
    if C // groups != Cg:
        raise ValueError(f"conv2d: weight {w.shape} expects {Cg * groups} input channels "
                         f"({Cg} per group x {groups} groups), but the input has {C}")
    if b is not None and b.shape != (O,):
        raise ValueError(f"conv2d: bias must have shape ({O},), got {b.shape}")
    checks.same_dtype("conv2d", x, w, b)
    checks.same_device("conv2d", x, w, b)
    stride, padding = checks.pair("conv2d", "stride", stride), checks.pair("conv2d", "padding", padding)
    conv_outsize(H, KH, stride[0], padding[0], "conv2d")
    conv_outsize(W, KW, stride[1], padding[1], "conv2d")
    m = winograd.choose(algorithm, x.shape, w.shape, stride, padding, groups)
    fn = Conv2d(stride, padding, groups) if m is None else winograd_conv(stride, padding, groups, m)
    return fn(x, w) if b is None else fn(x, w, b)
