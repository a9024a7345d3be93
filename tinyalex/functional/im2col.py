"""Window geometry: output sizes, kernel windows, padding, im2col and col2im (paper sections 3.4, 3.5).

Every convolution and pooling layer slides a KH x KW window with stride (SH, SW) over a zero-padded
(PH, PW) image; this module is the one place that knows where the windows fall. ``im2col`` copies
each receptive field into a column of a matrix, so that all filters meet all fields in a single
matrix multiply (the GEMM that BLAS on the CPU, cuBLAS on a GPU, do fastest). ``col2im`` is its
adjoint: it adds each column back onto the pixels it came from, which is what the backward pass needs.
"""
from .. import backend


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
    """Pad the last two axes of a raw array by (PH, PW) on both sides with ``value``: np.pad's constant
    mode (tested against it), as an array of ``value`` with x copied into its middle, which on the CPU
    ran 1.8x faster than np.pad's general code (64 x 96 x 32 x 32 maps padded by 1: 6.79 -> 3.67 ms)."""
    if PH == 0 and PW == 0:
        return x
    *lead, H, W = x.shape
    with backend.on_device(backend.device_of(x)):
        out = backend.xp(x).full((*lead, H + 2 * PH, W + 2 * PW), value, x.dtype)
    out[..., PH:PH + H, PW:PW + W] = x
    return out


def phases(x, SH, SW, PH, PW, value, out=None):
    """The SH x SW polyphase components of x (n, C, H, W) padded by (PH, PW) with ``value``:

        P[a, b, n, c, h, w] = x_padded[n, c, h*SH + a, w*SW + b]     (SH, SW, n, C, Hp, Wp)

    with Hp = ceil((H + 2 PH) / SH), Wp likewise, and ``value`` also where h*SH + a or w*SW + b falls
    past the padded input. Kernel offset (i, j) of the window at (oh, ow) at stride (SH, SW) reads
    P[i % SH, j % SW, n, c, oh + i // SH, ow + j // SW]: on the flattened component (a, b) every
    window's tap (i, j) is one contiguous run shifted by (i // SH) * Wp + j // SW, if the outputs
    are laid out on a grid of Hp x Wp a plane (its extra places read past a row or a plane: values
    to drop). Written into ``out`` (a C-contiguous array of that shape) when given.
    """
    xp, (n, C, H, W) = backend.xp(x), x.shape
    Hp, Wp = -(-(H + 2 * PH) // SH), -(-(W + 2 * PW) // SW)
    if (PH, PW, Hp * SH, Wp * SW) != (0, 0, H, W):
        with backend.on_device(backend.device_of(x)):
            grid = xp.full((n, C, Hp * SH, Wp * SW), value, x.dtype)
        grid[:, :, PH:PH + H, PW:PW + W] = x
        x = grid
    if out is None:
        with backend.on_device(backend.device_of(x)):
            out = xp.empty((SH, SW, n, C, Hp, Wp), x.dtype)
    out[...] = x.reshape(n, C, Hp, SH, Wp, SW).transpose(3, 5, 0, 1, 2, 4)
    return out


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
    The copy is one strided slice per kernel offset, all KH*KW of them read through one view
    (``windows``, ``fill_columns``). (conv2d builds the same columns with the images in the last
    place, which makes the copy faster; this function gives them in the order above.)
    """
    N, C, H, W = x.shape
    OH, OW = conv_outsize(H, KH, SH, PH, "im2col"), conv_outsize(W, KW, SW, PW, "im2col")
    xp = backend.xp(x)
    with backend.on_device(backend.device_of(x)):
        col = xp.empty((C, KH, KW, OH, OW, N), dtype=x.dtype)
    fill_columns(col, padded_images_last(x, PH, PW), SH, SW)
    return xp.ascontiguousarray(col.transpose(0, 1, 2, 5, 3, 4)).reshape(C * KH * KW, N * OH * OW)


def shared_rows(xc, KH, KW, SH, SW, groups=1):
    """The im2col columns of every image's output rows as views into one copy of the input rows, on
    raw arrays: the padded images xc (n, C, Hp, Wp) -> (n, groups, OH, KH*Cg*KW, OW), Cg = C/groups.

    Cho and Brand's memory-efficient convolution (MEC, 2017) lowers along the width only:

        R[g, h, (c, j), (m, ow)] = xc[m, g*Cg + c, h, ow*SW + j]      (KW shifted copies of each row)

    Output row oh reads input rows oh*SH .. oh*SH + KH - 1, which are KH consecutive rows of R: its
    columns, rows (i, c, j) and columns (m, ow), are the block R[g, oh*SH : oh*SH + KH] seen as one
    matrix, a view (the blocks overlap: it is for reading), and image m's are that block's columns
    m*OW .. m*OW + OW - 1, again a matrix of one row stride. A GEMM of the filters, their taps in the
    order (i, c, j), with one of them gives that output row of image m, (O/groups, OW), which is a
    matrix in y's NCHW layout too. The copy is one strided copy, Hp*C*KW*n*OW values, where im2col's
    columns hold OH*C*KH*KW*n*OW: 4.4x fewer for the four-layer CNN's conv1 (36 rows of 5 shifts
    against 32 of 25), 2.7x for the paper's 11x11 filters at stride 4.
    """
    n, C, Hp, Wp = xc.shape
    OH, OW = conv_outsize(Hp, KH, SH, 0, "shared_rows"), conv_outsize(Wp, KW, SW, 0, "shared_rows")
    xp, Cg = backend.xp(xc), C // groups
    with backend.on_device(backend.device_of(xc)):
        R = xp.empty((groups, Hp, Cg, KW, n, OW), xc.dtype)
    # the KW shifts of every row in one copy
    R[...] = row_shifts(xc, KW, SW).reshape(n, groups, Cg, KW, Hp, OW).transpose(1, 4, 2, 3, 0, 5)
    g, h, _, tap, m, ow = R.strides  # the taps (i, c, j) are one axis: h = Cg*KW*tap, c's stride KW*tap
    return xp.lib.stride_tricks.as_strided(R, (n, groups, OH, KH * Cg * KW, OW), (m, g, SH * h, tap, ow))


def row_shifts(xc, KW, SW):
    """The KW shifted copies of every row of the padded images xc (n, C, Hp, Wp), as one view (the 1 x KW
    windows at every row, ``windows``):

        S[m, c, j, h, ow] = xc[m, c, h, ow*SW + j]          (n, C, KW, Hp, OW)
    """
    n, C, Hp, Wp = xc.shape
    return windows(xc, 1, KW, Hp, conv_outsize(Wp, KW, SW, 0, "row_shifts"), 1, SW, lead=2)[:, :, 0]


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


def windows(xc, KH, KW, OH, OW, SH, SW, lead=1):
    """Every kernel offset's window of xc at once, as one view (for reading: the windows overlap):

        V[..., i, j, oh, ow, ...] = xc[..., oh*SH + i, ow*SW + j, ...]

    xc (lead axes, H, W, rest) -> V (lead axes, KH, KW, OH, OW, rest): V[..., i, j, :, :, ...] is
    ``window(i, j, ...)``'s slice of xc. The copy of all KH*KW slices is then one NumPy call instead
    of KH*KW: the same values, and on two threads no longer 2-3x slower than on one (each short call
    waits for the interpreter's lock the threads share; BENCHMARKS.md).
    """
    s = xc.strides
    shape = xc.shape[:lead] + (KH, KW, OH, OW) + xc.shape[lead + 2:]
    strides = s[:lead] + (s[lead], s[lead + 1], SH * s[lead], SW * s[lead + 1]) + s[lead + 2:]
    return backend.xp(xc).lib.stride_tricks.as_strided(xc, shape, strides)


def fill_columns(col, xc, SH, SW, lead=1):
    """im2col's copy: col (C, KH, KW, OH, OW, N) <- the windows of the padded xc (C, H, W, N), in one
    copy from their view (``windows``).

    ``lead``: the axes before the kernel offsets; 2 for the images first, col (N, C, KH, KW, OH, OW)
    <- xc (N, C, H, W).
    """
    col[...] = windows(xc, *col.shape[lead:lead + 4], SH, SW, lead)
    return col


def add_columns(xc, col, SH, SW, lead=1):
    """col2im's sum: each column of col (C, KH, KW, OH, OW, N) added onto its window of xc (C, H, W, N)
    (``lead`` as in fill_columns)."""
    KH, KW, OH, OW = col.shape[lead:lead + 4]
    axes = (slice(None),) * lead
    for i in range(KH):
        for j in range(KW):
            xc[axes + window(i, j, OH, OW, SH, SW)] += col[axes + (i, j)]
    return xc
