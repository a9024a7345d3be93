"""Winograd minimal filtering: stride-1 convolutions with fewer multiplications (Lavin and Gray 2016).

One dimension first. F(m, r) gives m outputs of an r-tap correlation, y_i = sum_k g_k d_{i+k}, from
a tile of alpha = m + r - 1 inputs with alpha multiplications instead of m*r:

    y = A^T [ (G g) * (B^T d) ]                  (* element-wise; A^T m x alpha, G alpha x r, B^T alpha x alpha)

Cook-Toom construction: the linear convolution s = g conv h of polynomials g (r taps) and h (m taps)
has alpha coefficients, fixed by its values at alpha points p. At a finite point s(p) = g(p) h(p); at
the point "infinity" the value is the top coefficient, s_{alpha-1} = g_{r-1} h_{m-1}. With V_k the
alpha x k evaluation matrix (row [1, p, ..., p^(k-1)] for a point p, [0, ..., 0, 1] for infinity),

    s = V_alpha^-1 [ (V_r g) * (V_m h) ],        so the Toeplitz matrix of g is T_g = V_alpha^-1 diag(V_r g) V_m.

A correlation is the transpose of a convolution (y = T_g^T d), which gives

    A^T = V_m^T,     G = V_r,     B^T = V_alpha^-T.

F(2, 3) at the points 0, 1, -1, infinity: A^T = [[1, 1, 1, 0], [0, 1, -1, 1]], G rows [1, 0, 0],
[1, 1, 1], [1, -1, 1], [0, 0, 1], and B^T = [[1, 0, -1, 0], [0, 1/2, 1/2, 0], [0, -1/2, 1/2, 0],
[0, -1, 0, 1]]: 4 multiplications for 2 outputs, not 6. (Lavin and Gray move the halves from B^T
into G; exact arithmetic does not care where they sit.) ``cook_toom`` builds the three matrices in
exact fractions and hands them out as floats.

Two dimensions nest the 1-D algorithm, F(m x m, r x r): an alpha x alpha tile d gives an m x m block

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (alpha^2 multiplications for m^2 outputs, not m^2 r^2).

Over a layer the element-wise product becomes, for each of the alpha^2 tile positions, one matrix
product over channels: M[xi, nu] (O, tiles) = U[xi, nu] (O, C) @ V[xi, nu] (C, tiles), with U the
transformed filters and V the transformed input tiles, batched over the positions and the groups.

Tile sizes and their float32 error (the points 0, +-1, +-2, infinity are the small ones; larger
points make V_alpha^-1 worse conditioned and the error grows with alpha, so the 8x8 tiles take
+-1/2, whose powers shrink, before +-3; the 7x7 tiles take +1/2; the 9x9 tiles' points were
searched, ``cook_toom.POINTS``): F(2x2, 3x3), F(4x4, 3x3) and F(5x5, 3x3) for 3x3 filters (2.25x, 4x
and 4.6x fewer multiplications), F(2x2, 5x5) with 6x6 tiles, F(4x4, 5x5) with 8x8 tiles and
F(5x5, 5x5) with 9x9 tiles for 5x5 filters (2.8x, 6.25x and 7.7x fewer). The measured errors are
stated in tests/test_winograd.py. A layer's tiles are the ones that cover its output with the fewest
products, a larger tile only where it saves more than a tenth of them (``tile_side``): AlexNet's
13x13 maps fill 169 of 225 outputs of F(5x5, 3x3)'s tiles and 169 of 256 of F(4x4, 3x3)'s; the
four-layer CNN's 15x15 maps fill all 225 of F(5x5, 5x5)'s and 225 of 256 of F(4x4, 5x5)'s.
"""
import functools
import numpy as np

from .. import backend, threads
from ..tensor import Function
from .bias import bias_gradient
from .im2col import windows

from .cook_toom import POINTS, cook_toom, evaluation, inverse  # noqa: F401  (the lessons read them from here)
from .conv_algorithm import ALGORITHMS, AUTO, TILE, check_algorithm, choose, tile_side  # noqa: F401  (as above)


def transform(T, D, out=None):
    """T D T^T on the first two axes of D (a, a, ...) -> (k, k, ...), for T (k, a), the second product
    written into ``out`` (k, k, prod(...)) when given:

        E[b, i] = sum_a T[i, a] D[a, b]        (the columns of every tile: a GEMM for each b)
        V[i, j] = sum_b T[j, b] E[b, i]        (then its rows: a GEMM for each i)

    Each is a batch of a (resp. k) GEMMs, (k, a) @ (a, prod(...)), over strided slices of D and E.
    The first was one GEMM, T @ D seen as (a, a*prod(...)), whose long, thin operand OpenBLAS ran
    1.7-2x slower than the a slices of it, for the same bits (a chunk of the four-layer CNN's conv2:
    input transform 0.60-0.75 -> 0.36 ms, output 0.38 -> 0.18; BENCHMARKS.md).
    """
    xp, (k, a), rest = backend.xp(D), T.shape, D.shape[2:]
    T = xp.asarray(T, dtype=D.dtype)
    E = xp.matmul(T, D.reshape(a, a, -1).transpose(1, 0, 2))  # (a, k, prod(...))
    return xp.matmul(T, E.transpose(1, 0, 2), out=out).reshape((k, k) + rest)


def kron_product(a, b):
    """a @ b for a (M, k) and b (k, N), one of them a Kronecker transform of the filters (``filters``):
    from KRON_MIN_VALUES result values on, ``threads.matmul`` (its long side cut among the threads),
    else one call. The filter transforms run outside the parts of the batch, once an op."""
    xp = backend.xp(a)
    if xp is np and a.shape[0] * b.shape[1] >= KRON_MIN_VALUES:
        return threads.matmul(a, b)
    with backend.on_device(backend.device_of(a)):  # CuPy multiplies on the current device
        return xp.matmul(a, b)


# Below this many result values a filter transform is one call: handing a part to another thread
# took ~120 us here, and training steps of the four-layer CNN (whose filter transforms give 65 and
# 131 thousand values) ran 0.965-0.977x with its transforms cut, AlexNet's (786 thousand to 3.5
# million) 1.049x against 1.008x uncut (in-process A/Bs, BENCHMARKS.md).
KRON_MIN_VALUES = 1 << 19


def input_tiles(x, m, alpha, PH, PW):
    """The overlapping alpha x alpha tiles of x (N, C, H, W) padded by (PH, PW), one every m pixels,
    as D (alpha, alpha, C, TH, TW, N): D[i, j, c, th, tw, n] = x_padded[n, c, th*m + i, tw*m + j].

    A negative padding crops. The bottom and right get the extra zeros that the remainder tiles need:
    their outputs beyond the image are computed and dropped. The images go last (as im2col's columns,
    ``padded_images_last``): each tile position is then one strided slice whose inner runs are the N
    images, where with the images first they were single values and the copy 2-7x slower (it read all
    of x for each of the alpha^2 positions). All alpha^2 positions are copied in one call, from the
    view of every window (``im2col.windows``): on two threads the alpha^2 copies of a loop, one
    call each, ran 2.6x slower than on one (BENCHMARKS.md).
    """
    xp, (N, C, H, W) = backend.xp(x), x.shape
    x = x[:, :, max(0, -PH):H - max(0, -PH), max(0, -PW):W - max(0, -PW)]
    PH, PW = max(0, PH), max(0, PW)
    OH, OW = x.shape[2] + 2 * PH - alpha + m, x.shape[3] + 2 * PW - alpha + m
    TH, TW = -(-OH // m), -(-OW // m)
    with backend.on_device(backend.device_of(x)):
        xc = xp.zeros((C, TH * m + alpha - m, TW * m + alpha - m, N), x.dtype)
        D = xp.empty((alpha, alpha, C, TH, TW, N), x.dtype)
    xc[:, PH:PH + x.shape[2], PW:PW + x.shape[3]] = x.transpose(1, 2, 3, 0)
    D[...] = windows(xc, alpha, alpha, TH, TW, m, m).transpose(1, 2, 0, 3, 4, 5)
    return D, (OH, OW)


def filters(w, m, groups, flipped=False):
    """U = G g G^T for every filter g of w (O, C/groups, r, r), by F(m x m, r x r): (alpha^2, groups,
    O/groups, C/groups), the left factors of correlate's products. Row-major, vec(G g G^T) =
    (G kron G) vec(g), so all of them are one product, (alpha^2, r^2) @ (r^2, O*C/groups), with w as
    it is stored, its columns cut among the threads (``kron_product``): AlexNet's conv3 (384 x 256 x 3
    x 3 filters) in 1.85 ms on 2 threads (2.2 on one), where G g G^T as two products over a moved copy
    took 3.1 and, for the flipped filters, 5.6 (BENCHMARKS.md).

    ``flipped``: the filters of the input gradient's correlation, g rotated by 180 degrees with its
    input and output channels swapped, (alpha^2, groups, C/groups, O/groups): the rotation reverses
    the order of g's r^2 taps (the columns of G kron G), the swap is a transposed view.
    """
    (O, Cg, r, _), alpha = w.shape, m + w.shape[2] - 1
    K = kronecker(m, r)
    K = backend.xp(w).asarray(K[:, ::-1] if flipped else K, dtype=w.dtype)
    U = kron_product(K, w.reshape(O * Cg, r * r).T).reshape(alpha * alpha, groups, O // groups, Cg)
    return U.swapaxes(2, 3) if flipped else U


@functools.lru_cache(maxsize=None)
def kronecker(m, r):
    """G kron G of F(m x m, r x r), (alpha^2, r^2) in float64, read-only: made once, not at every
    layer's every pass (np.kron took ~80 us a call, 0.5 ms of a four-layer CNN's step)."""
    G = cook_toom(m, r)[1]
    K = np.kron(G, G)
    K.flags.writeable = False
    return K


def filter_gradient(gU, m, r):
    """gW = G^T gU G for every filter's gU of (alpha^2, groups, O/groups, C/groups): (O, C/groups, r, r),
    as vec(gW) = (G kron G)^T vec(gU), one product (see ``filters``)."""
    alpha2, G, Og, Cg = gU.shape
    K = backend.xp(gU).asarray(kronecker(m, r), dtype=gU.dtype)
    return kron_product(gU.reshape(alpha2, -1).T, K).reshape(G * Og, Cg, r, r)


def correlate(x, U, PH, PW, m, b=None, out=None, tiles=None):
    """Stride-1 correlation of x (N, C, H, W) with the filters w (O, C/groups, r, r) whose transform is
    U = ``filters(w, m, groups)`` (the parts of a batch share one), padded by (PH, PW) (negative crops),
    by F(m x m, r x r), plus the bias b (O,) if given: (N, O, OH, OW), written into ``out`` when given
    (a C-contiguous array). Returns it and the transformed tiles V, which the weight gradient needs,
    written into ``tiles`` (a flat array of their size) when given."""
    xp, (alpha2, G, Og, Cg) = backend.xp(x), U.shape
    alpha, O = int(round(alpha2 ** 0.5)), G * Og
    r = alpha - m + 1
    AT, _, BT = cook_toom(m, r)
    D, (OH, OW) = input_tiles(x, m, alpha, PH, PW)
    _, _, C, TH, TW, N = D.shape
    if tiles is not None:
        tiles = tiles.reshape(alpha, alpha, -1)
    V = transform(BT, D, out=tiles).reshape(alpha * alpha, G, Cg, TH * TW * N)
    M = xp.matmul(U, V).reshape(alpha, alpha, O, TH, TW, N)  # alpha^2 x groups GEMMs over all tiles
    # the tiles' m x m blocks next to their tiles, the images still last (runs of N values: a cheap
    # copy), then the outputs inside the image moved to NCHW with the bias: 1.5-2.5x faster than one
    # gather from (m, m, O, TH, TW, N), whose inner runs were single values O TH TW N apart
    Y = xp.ascontiguousarray(transform(AT, M).transpose(2, 3, 0, 4, 1, 5))  # (O, TH, m, TW, m, N)
    Y = Y.reshape(O, TH * m, TW * m, N)[:, :OH, :OW].transpose(3, 0, 1, 2)
    if out is None:
        with backend.on_device(backend.device_of(x)):
            out = xp.empty((N, O, OH, OW), x.dtype)
    if b is None:
        out[...] = Y
    else:
        xp.add(Y, b.reshape(O, 1, 1), out=out)
    return out, V


# A chunk of images on the CPU: each thread's part of the batch goes through correlate a chunk at a
# time, so that the tile copy, the transforms and the products run in the core's cache instead of
# through the memory the cores share. A chunk's tiles and products (V and M, alpha^2 (C + O) values a
# tile) take at most CPU_CHUNK_BYTES, unless that leaves them fewer values than the filters'
# transform U (alpha^2 O C / groups), which the products of every chunk read whole: then as many
# whole images as hold that many, so that a chunk's products read at most as much of U as of its
# own tiles. A part is cut into chunks of equal size. One thread's 64 images of the four-layer CNN's
# conv2 (32 -> 32 maps, 15x15) took 15.4 ms at once and 8.0 ms in chunks of 16. Training steps
# (in-process, interleaved, freed memory kept as the tinyalex command keeps it; BENCHMARKS.md),
# whole parts -> chunks of 4 MB: four-layer CNN 117.4 -> 106.2 ms, AlexNet-CIFAR 1717 -> 1111 ms
# (its conv2 alone 643 -> 289-308 ms). The floor was first at least 128 tiles a product: AlexNet at
# batch 16 then ran its conv2 (27x27 maps, 49 tiles an image, 3.1 MB of U against 4.4 MB of tiles
# and products an image) two images a chunk, 30.7 + 71.7 ms forward and backward in-step, and one
# image a chunk by U's floor, 22.3 + 49.6: the step 576.6 -> 541.2 ms (1.065x; again 646.3 -> 604.1,
# 1.070x); its 13x13 layers, whose U (9.6-19.3 MB) outweighs all 8 images of a part, stay in one
# chunk, as they ran fastest (cut to 3 images by 32 tiles a product, conv3-5 ran 12-41% slower).
# AlexNet-CIFAR (conv2 from 8 to 2-3 images a chunk, conv4 and conv5 from 32 to 21-22 and to 16)
# 1042.1 -> 1029.9 ms; the four-layer CNN's chunks do not change.
CPU_CHUNK_BYTES = 4 << 20


class Winograd2d(Function):
    """Stride-1 convolution with square r x r filters by F(m x m, r x r), with padding and groups.

    forward: the correlation above. backward:
      gx: the same algorithm on the flipped filters with input and output channels swapped, over gy
          padded by r - 1 - P (a full correlation);
      gW: the adjoint of forward's products, gU[xi, nu] = Z[xi, nu] V[xi, nu]^T summed over all tiles,
          with Z = A gy_tile A^T the transformed m x m tiles of gy, then gW = G^T gU G;
      gb: gy summed over N, OH, OW.
    On the CPU the batch is cut into one part per thread, each part on a one-thread BLAS and in
    chunks of images (``CPU_CHUNK_BYTES``), the filters transformed once for all parts, and each
    part's gU, summed over its chunks, transformed into its share of gW. Only the gradients asked
    for are computed (``needs_input_grad``); forward keeps a part's transformed tiles V in one
    array, and only when the weight gradient will need them. It is labelled a Conv2d, with the
    stride, padding and groups of one, so that traces and benchmarks see the same convolution
    whichever algorithm computes it; ``algorithm`` tells them apart.
    ``correlated_padding`` is the padding of the stride-1 correlation computed: ``padding`` here, 0
    under a space-to-depth (``space_to_depth.SpaceToDepthWinograd2d``, whose padding is the layer's).
    """

    label, algorithm, stride = "Conv2d", "winograd", (1, 1)

    def __init__(self, padding, groups, m):
        self.padding = self.correlated_padding = padding
        self.groups, self.m = groups, m

    # the filter transforms run outside the parts: on the BLAS's own threads they would leave them
    # spinning into the parts (threads.py), so the whole op holds the BLAS at one thread
    @threads.one_blas_thread()
    def forward(self, x, w, b=None):
        (N, _, H, W), r, (PH, PW) = x.shape, w.shape[2], self.correlated_padding
        xp = backend.xp(x)
        y = xp.empty((N, w.shape[0], H + 2 * PH - r + 1, W + 2 * PW - r + 1), x.dtype)
        # on the CPU one part of the batch per thread, each with a one-thread BLAS (as im2col's Conv2d)
        U = filters(w, self.m, self.groups)
        calls = [functools.partial(self.forward_part, x, w, U, b, y, images)
                 for images in threads.slices(x, x.size * r * r)]
        self.save_for_backward(w=w, x_shape=x.shape, parts=threads.in_parallel(calls, gemm=True))
        return y

    def forward_part(self, x, w, U, b, y, images):
        """y[images], a chunk at a time; returns the chunks and their transformed tiles (None each
        when the weight gradient will not need them)."""
        (PH, PW), m, xp = self.correlated_padding, self.m, backend.xp(x)
        chunks, per_image = self.chunks(x, w, images)
        kept = None
        if self.needs_input_grad[1]:
            with backend.on_device(backend.device_of(x)):  # one array for all of the part's tiles
                kept = xp.empty(per_image * (chunks[-1].stop - chunks[0].start), x.dtype)
        Vs = []
        for c in chunks:
            at = slice((c.start - chunks[0].start) * per_image, (c.stop - chunks[0].start) * per_image)
            tiles = None if kept is None else kept[at]
            V = correlate(x[c], U, PH, PW, m, b, out=y[c], tiles=tiles)[1]
            Vs.append(None if tiles is None else V)
        return chunks, Vs

    def chunks(self, x, w, images):
        """Consecutive slices of x[images] (absolute positions in the batch) whose tiles and products,
        alpha^2 (C + O) values a tile, fit CPU_CHUNK_BYTES but hold at least the values of the
        filters' transform U, all of one size (one slice on a GPU); and the values of one image's
        transformed tiles V (alpha^2 C a tile)."""
        (_, C, H, W), (O, Cg, r, _), (PH, PW) = x.shape, w.shape, self.correlated_padding
        alpha, start, stop = self.m + r - 1, *images.indices(x.shape[0])[:2]
        tiles = -(-(H + 2 * PH - r + 1) // self.m) * -(-(W + 2 * PW - r + 1) // self.m)
        per_image = alpha * alpha * (C + O) * tiles  # V and M
        n = max(-(-alpha * alpha * O * Cg // per_image), CPU_CHUNK_BYTES // (per_image * x.itemsize))
        cut = threads.cut(start, stop, 1) if backend.is_gpu_array(x) else threads.cut_by_size(start, stop, n)
        return cut, alpha * alpha * C * tiles

    @threads.one_blas_thread()
    def backward(self, gy):
        w = self.saved.w
        need_gx, need_gW = self.needs_input_grad[:2]
        xp = backend.xp(gy)
        gx = flipped = None
        if need_gx:
            # the input gradient is the correlation of gy with the flipped filters, maps and channels swapped
            gx = xp.empty((gy.shape[0],) + self.saved.x_shape[1:], gy.dtype)
            flipped = filters(w, self.m, self.groups, flipped=True)
        gWs = threads.in_parallel([functools.partial(self.backward_part, gy, gx, flipped, *part)
                                   for part in self.saved.parts], gemm=True)
        gW = sum(gWs[1:], gWs[0]) if need_gW else None  # the parts' shares: G^T gU G is linear in gU
        if len(self.inputs) == 2:
            return gx, gW
        return gx, gW, bias_gradient(gy) if self.needs_input_grad[2] else None

    def backward_part(self, gy, gx, flipped, chunks, Vs):
        """gx of these chunks' images (written into ``gx`` unless it is None; ``flipped``: the transform
        of the flipped filters), and, when the tiles Vs were kept, their share of gW: G^T gU G of
        their gU summed. Each part transforms its own gU, so that the parts' U-sized arrays are read
        once, on their own threads, instead of added up on one first (AlexNet's conv3-5: 9.6-19.3 MB
        each; BENCHMARKS.md)."""
        gU = None
        for c, V in zip(chunks, Vs):
            g = self.backward_chunk(gy, gx, flipped, c, V)
            if gU is None:
                gU = g
            else:
                gU += g
        return None if gU is None else filter_gradient(gU, self.m, self.saved.w.shape[2])

    def backward_chunk(self, gy, gx, flipped, images, V):
        """backward_part for one chunk of images, whose transformed tiles are V (None: no gU)."""
        w, G, m, (PH, PW) = self.saved.w, self.groups, self.m, self.correlated_padding
        (O, _, r, _), xp, gy = w.shape, backend.xp(gy), gy[images]
        if gx is not None:
            correlate(gy, flipped, r - 1 - PH, r - 1 - PW, m, out=gx[images])
        if V is None:
            return None
        AT, _, _ = cook_toom(m, r)
        N, _, OH, OW = gy.shape
        TH, TW = -(-OH // m), -(-OW // m)
        if (TH * m, TW * m) != (OH, OW):
            with backend.on_device(backend.device_of(gy)):
                gyt = xp.zeros((N, O, TH * m, TW * m), gy.dtype)
            gyt[:, :, :OH, :OW] = gy  # outputs dropped from the remainder tiles had no gradient
            gy = gyt
        # the m x m tiles of gy in V's order of columns: (m, m, O, TH, TW, N)
        Y = gy.reshape(N, O, TH, m, TW, m).transpose(3, 5, 1, 2, 4, 0)
        Z = transform(AT.T, Y).reshape(V.shape[0], G, O // G, -1)
        return xp.matmul(Z, V.swapaxes(2, 3))  # (alpha^2, G, O/G, Cg): the sum over tiles is in the GEMM
