"""Convolution as one matrix product: im2col, col2im and conv2d with groups (paper sections 3.2, 3.5).

A convolution slides every filter over every receptive field. ``im2col`` copies each receptive field
into a column of a matrix, so that all filters meet all fields in a single matrix multiply (the GEMM
that BLAS on the CPU, cuBLAS on a GPU, do fastest). ``col2im`` is its adjoint: it adds each column
back onto the pixels it came from, which is what the backward pass needs.
"""
from .. import backend
from ..tensor import Function
from . import checks, winograd


def conv_outsize(size, k, s, p, op="conv_outsize"):
    """Output length of a window of size ``k`` sliding with stride ``s`` over ``size`` padded by ``p``.

        out = floor((size + 2p - k) / s) + 1            (floor rounding, as PyTorch)

    Every convolution and pooling layer takes its output size from here. The paper (section 3.5)
    filters a 224x224 image with 96 kernels of 11x11 at stride 4 and gets 55x55 maps, but

        floor((224 - 11) / 4) + 1 = 54,     floor((227 - 11) / 4) + 1 = 55,

    so the input must really be 227x227 (or 224 padded by 2: floor((228 - 11) / 4) + 1 = 55).
    Overlapping pooling (3x3 at stride 2, section 3.4) then gives 55 -> 27 -> 13 -> 6.
    ``op`` names the operation in the error raised for a stride of 0 or a kernel larger than the
    padded input.
    """
    if s <= 0:
        raise ValueError(f"{op}: stride must be positive, got {s}")
    if k > size + 2 * p:
        raise ValueError(f"{op}: kernel size {k} is larger than the padded input ({size} + 2*{p} = {size + 2 * p})")
    return (size + 2 * p - k) // s + 1


def window(i, j, OH, OW, SH, SW):
    """(rows, columns) of the pixels that kernel offset (i, j) touches, for all OH x OW outputs at once.

    Output pixel (oh, ow) reads padded input pixel (oh*SH + i, ow*SW + j): a strided slice per axis.
    """
    return slice(i, i + SH * (OH - 1) + 1, SH), slice(j, j + SW * (OW - 1) + 1, SW)


def pad2d(x, PH, PW, value=0):
    """Pad the last two axes of a raw array by (PH, PW) on both sides with ``value``."""
    if PH == 0 and PW == 0:
        return x
    pad = [(0, 0)] * (x.ndim - 2) + [(PH, PH), (PW, PW)]
    return backend.xp(x).pad(x, pad, constant_values=value)


def im2col(x, KH, KW, SH, SW, PH, PW):
    """Receptive fields as columns: (N, C, H, W) -> col (C*KH*KW, N*OH*OW), on raw arrays.

    Column ``(n*OH + oh)*OW + ow`` holds the C*KH*KW input values that output pixel (oh, ow) of image
    n sees; row ``(c*KH + i)*KW + j`` holds input channel c at kernel offset (i, j). For one 3x3
    image, one channel and a 2x2 kernel at stride 1 (OH = OW = 2)::

        image        kernel offset    output pixel (oh, ow)
        a b c           (i, j)      (0,0) (0,1) (1,0) (1,1)
        d e f   ->      (0, 0)    [   a     b     d     e  ]
        g h i           (0, 1)    [   b     c     e     f  ]
                        (1, 0)    [   d     e     g     h  ]
                        (1, 1)    [   e     f     h     i  ]

    Overlapping windows repeat pixels (e sits in every column). With the weights w (O, C, KH, KW)
    seen as a matrix (O, C*KH*KW), the convolution is the product w @ col (O, N*OH*OW); the
    channel-major rows give each group of a grouped convolution one contiguous block of rows.
    The copy is one strided slice per kernel offset (``fill_columns``): KH*KW Python steps, each
    vectorised over N, C, OH, OW. (conv2d builds the same columns with the images in the last
    place, which makes the copy faster; this function gives them in the order above.)
    """
    N, C, H, W = x.shape
    OH, OW = conv_outsize(H, KH, SH, PH, "im2col"), conv_outsize(W, KW, SW, PW, "im2col")
    xp = backend.xp(x)
    with backend.on_device(backend.device_of(x)):
        col = xp.empty((C, KH, KW, OH, OW, N), dtype=x.dtype)
    fill_columns(col, padded_images_last(x, PH, PW), SH, SW)
    return xp.ascontiguousarray(col.transpose(0, 1, 2, 5, 3, 4)).reshape(C * KH * KW, N * OH * OW)


def col2im(col, x_shape, KH, KW, SH, SW, PH, PW):
    """Adjoint of im2col: col (C*KH*KW, N*OH*OW) -> (N, C, H, W), adding overlapping windows.

    Where windows overlap (stride < kernel) an input pixel sits in several columns and receives the
    sum of all of them: col2im(col) is not an inverse of im2col but its transpose, so that
    <im2col(x), col> = <x, col2im(col)>. The result is a new C-contiguous array.
    """
    N, C, H, W = x_shape
    OH, OW = conv_outsize(H, KH, SH, PH, "col2im"), conv_outsize(W, KW, SW, PW, "col2im")
    col = col.reshape(C, KH, KW, N, OH, OW).transpose(0, 1, 2, 4, 5, 3)
    with backend.on_device(backend.device_of(col)):
        xc = add_columns(backend.xp(col).zeros((C, H + 2 * PH, W + 2 * PW, N), dtype=col.dtype), col, SH, SW)
    return backend.xp(xc).ascontiguousarray(images_first(xc, PH, PW))


def padded_images_last(x, PH, PW):
    """(N, C, H, W) -> a contiguous, zero-padded (C, H + 2PH, W + 2PW, N) copy, in one pass.

    The images go last, as in Krizhevsky's cuda-convnet: then a window slice of a stride-1
    convolution is a run of OW*N contiguous values per row instead of OW, and the im2col copy and
    the col2im sum run 1.5-4x faster (their inner loops were too short to stream).
    """
    N, C, H, W = x.shape
    with backend.on_device(backend.device_of(x)):
        xc = backend.xp(x).zeros((C, H + 2 * PH, W + 2 * PW, N), x.dtype)
    xc[:, PH:PH + H, PW:PW + W] = x.transpose(1, 2, 3, 0)  # moved and padded at once: one copy, not two
    return xc


def images_first(xc, PH, PW):
    """(C, H + 2PH, W + 2PW, N) -> the unpadded (N, C, H, W), as a view: padded_images_last undone."""
    _, H, W, _ = xc.shape
    return xc[:, PH:H - PH, PW:W - PW].transpose(3, 0, 1, 2)


def fill_columns(col, xc, SH, SW):
    """im2col's copy: col (C, KH, KW, OH, OW, N) <- the windows of the padded xc (C, H, W, N)."""
    _, KH, KW, OH, OW, _ = col.shape
    for i in range(KH):
        for j in range(KW):
            col[:, i, j] = xc[(slice(None), *window(i, j, OH, OW, SH, SW))]
    return col


def add_columns(xc, col, SH, SW):
    """col2im's sum: each column of col (C, KH, KW, OH, OW, N) added onto its window of xc (C, H, W, N)."""
    _, KH, KW, OH, OW, _ = col.shape
    for i in range(KH):
        for j in range(KW):
            xc[(slice(None), *window(i, j, OH, OW, SH, SW))] += col[:, i, j]
    return xc


# Bytes of im2col columns built at a time on the CPU. One small buffer serves every chunk of images,
# instead of a whole-batch matrix of hundreds of MB (315 MB at conv2 of AlexNet-CIFAR, batch 128)
# page-faulted in afresh at each call and kept until backward; a chunk's columns and output stay in
# the cache between the copy, the GEMM and the move back to NCHW. A GPU takes as many images as
# 1 GB of columns holds: the whole batch for AlexNet at 128, not for VGG at 224.
CPU_CHUNK_BYTES = 8 << 20
GPU_CHUNK_BYTES = 1 << 30


class Conv2d(Function):
    """im2col + GEMM, a chunk of images at a time; backward rebuilds each chunk's columns from the
    (padded, images-last) input, which costs one more copy but keeps no columns alive between passes.

    Each chunk's images are padded into their own (C, H, W, n) array (``padded_images_last``), its
    columns are (C*KH*KW, OH*OW*n), and the GEMM gives (O, OH*OW*n), moved back to NCHW per chunk.
    """

    algorithm = "im2col"

    def __init__(self, stride, padding, groups):
        self.stride, self.padding, self.groups = stride, padding, groups

    def forward(self, x, w, b=None):
        (N, _, H, W), (O, _, KH, KW), G = x.shape, w.shape, self.groups
        (SH, SW), (PH, PW) = self.stride, self.padding
        OH, OW = conv_outsize(H, KH, SH, PH), conv_outsize(W, KW, SW, PW)
        xp = backend.xp(x)
        chunks = self.chunks(x, KH * KW * OH * OW, SW)
        xcs = [padded_images_last(x[n], PH, PW) for n in chunks]
        y = xp.empty((N, O, OH, OW), x.dtype)
        for n, col in zip(chunks, self.columns(xcs, KH, KW, OH, OW)):
            # one GEMM per group (a batched matmul): (G, O/G, Cg*KH*KW) @ (G, Cg*KH*KW, OH*OW*n)
            yn = xp.matmul(w.reshape(G, O // G, -1), col.reshape(G, -1, col.shape[1]))
            # these images back to NCHW while still in cache, the bias added in the same pass
            yn = yn.reshape(O, OH, OW, -1).transpose(3, 0, 1, 2)
            if b is None:
                y[n] = yn
            else:
                xp.add(yn, b.reshape(O, 1, 1), out=y[n])
        self.save_for_backward(xcs=xcs, chunks=chunks, w=w)
        return y

    def backward(self, gy):
        xcs, chunks, w, G = self.saved.xcs, self.saved.chunks, self.saved.w, self.groups
        (O, _, KH, KW), (N, _, OH, OW), (PH, PW) = w.shape, gy.shape, self.padding
        xp = backend.xp(gy)
        w = w.reshape(G, O // G, -1)
        # a GEMM is skipped for an input that needs no gradient (the images at the first layer)
        need_gx, need_gW = self.needs_input_grad[:2]
        gx = xp.empty((N,) + self.inputs[0].shape[1:], gy.dtype) if need_gx else None
        gW = xp.zeros_like(w) if need_gW else None
        for n, xc, col in zip(chunks, xcs, self.columns(xcs, KH, KW, OH, OW, fill=need_gW)):
            g = xp.ascontiguousarray(gy[n].transpose(1, 2, 3, 0)).reshape(G, O // G, -1)  # like forward's product
            col = col.reshape(G, -1, col.shape[1])
            if need_gW:
                gW += xp.matmul(g, col.swapaxes(1, 2))  # dL/dW = gy col^T, summed over the chunks
            if need_gx:
                # dL/dcol = W^T gy, written over the columns (no longer needed), then added onto the pixels
                xp.matmul(w.swapaxes(1, 2), g, out=col)
                gxc = add_columns(xp.zeros_like(xc), col.reshape(-1, KH, KW, OH, OW, xc.shape[3]), *self.stride)
                gx[n] = images_first(gxc, PH, PW)
        gW = gW.reshape(self.saved.w.shape) if need_gW else None
        if len(self.inputs) == 2:
            return gx, gW
        return gx, gW, gy.sum(axis=(0, 2, 3)) if self.needs_input_grad[2] else None

    @staticmethod
    def chunks(x, values_per_channel, SW):
        """Consecutive slices of the batch whose columns (C * values_per_channel each) fit CPU_CHUNK_BYTES
        (GPU_CHUNK_BYTES on a GPU).

        With a stride along the rows the images cut each window row into runs of n values, too short
        to copy fast: such a convolution (AlexNet's conv1) takes one image at a time on the CPU.
        """
        N, per_image = x.shape[0], x.shape[1] * values_per_channel * x.itemsize
        if backend.is_gpu_array(x):
            chunk = max(1, min(N, GPU_CHUNK_BYTES // per_image))
        else:
            chunk = 1 if SW > 1 else max(1, min(N, CPU_CHUNK_BYTES // per_image))
        return [slice(start, min(start + chunk, N)) for start in range(0, N, chunk)]

    def columns(self, xcs, KH, KW, OH, OW, fill=True):
        """The im2col columns (C*KH*KW, OH*OW*n) of each chunk's padded images xc (C, H, W, n), all in
        one reused buffer; ``fill=False`` hands out the buffer without copying into it."""
        xp, C = backend.xp(xcs[0]), xcs[0].shape[0]
        buffer = xp.empty(C * KH * KW * OH * OW * max(xc.shape[3] for xc in xcs), xcs[0].dtype)
        for xc in xcs:
            col = buffer[:C * KH * KW * OH * OW * xc.shape[3]].reshape(C, KH, KW, OH, OW, -1)
            if fill:
                fill_columns(col, xc, *self.stride)
            yield col.reshape(C * KH * KW, -1)


def conv2d(x, w, b=None, stride=1, padding=0, groups=1, algorithm="auto"):
    """2-D convolution (cross-correlation, as in every deep-learning library) with optional groups.

        y[n, o, oh, ow] = b[o] + sum_{c, i, j} w[o, c, i, j] * x[n, g*Cg + c, oh*SH + i - PH, ow*SW + j - PW]

    where g = o // (O/groups) is the group of filter o, Cg = C/groups its input channels, and x is 0
    outside the image (zero padding). ``groups=2`` is the paper's two-GPU network (section 3.2,
    Figure 2): layers 2, 4 and 5 see only the kernel maps on their own GPU.

    Shapes: x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) -> y (N, O, OH, OW) with
    OH = conv_outsize(H, KH, SH, PH) and likewise OW. ``stride`` and ``padding`` are ints or
    (height, width) pairs. Computed as im2col + one matrix product per group; backward:
    gW = gy col^T, gx = col2im(W^T gy), gb = gy summed over N, OH, OW.

    ``algorithm``: "im2col" (the above, the reference), "winograd" (stride 1, square 3x3 or 5x5
    filters: ``winograd.Winograd2d``, the same results in fewer multiplications) or "auto"
    (``winograd.choose``'s measured rule: Winograd for wide 3x3 layers, im2col elsewhere).
    """
    x, w, b = checks.tensors(x, w, b)
    checks.floating("conv2d", x, w, b)
    checks.ndim("conv2d", x, 4, layout="N, C, H, W")
    checks.ndim("conv2d", w, 4, "weight", layout="O, C/groups, KH, KW")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    (N, C, H, W), (O, Cg, KH, KW) = x.shape, w.shape
    if C % groups or O % groups:
        raise ValueError(f"conv2d: input channels ({C}) and output channels ({O}) must both be "
                         f"divisible by groups={groups}")
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
    fn = Conv2d(stride, padding, groups) if m is None else winograd.Winograd2d(padding, groups, m)
    return fn(x, w) if b is None else fn(x, w, b)
