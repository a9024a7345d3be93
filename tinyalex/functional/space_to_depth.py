"""A strided convolution as a stride-1 one over its input's polyphase components (space-to-depth).

With stride s, tap i = s a + p of a filter (a < r = ceil(k/s), p < s; the taps from k to r s - 1 are
zeros) reads row s (oh + a) + p of the padded input, which is row oh + a of its p-th polyphase
component. So, the components of x and of w stacked as channels,

    x'[n, (c, p, q), h, w] = x_padded[n, c, s h + p, s w + q],     w'[o, (c, p, q), a, b] = w[o, c, s a + p, s b + q],

y = conv(x, w, stride s, padding P) = conv(x', w', stride 1, no padding): C s^2 channels and r x r
filters instead of C and k x k. AlexNet's conv1 (11x11 filters at stride 4 over 3 channels) becomes
3x3 filters over 48 channels, which Winograd computes with 4.6x fewer multiplications than direct
convolution (F(5x5, 3x3)); the 12x12 taps hold 121 of the 144 products' worth of real weights. The
channel (c, p, q) is c s^2 + p s + q, so each group's channels stay together.
"""
from .. import backend, threads
from .im2col import conv_outsize
from .winograd import Winograd2d


def space_to_depth(a, s, padding, H2, W2):
    """x' above for a (N, C, H, W), padded by ``padding`` (PH, PW) on the top and the left and cut or
    zero-filled at the bottom and the right to s H2 x s W2: (N, C s^2, H2, W2). The batch is cut among
    the threads."""
    xp, (N, C, H, W), (PH, PW) = backend.xp(a), a.shape, padding
    rows, cols = min(H, s * H2 - PH), min(W, s * W2 - PW)
    with backend.on_device(backend.device_of(a)):
        padded = xp.zeros((N, C, s * H2, s * W2), a.dtype)
        out = xp.empty((N, C, s, s, H2, W2), a.dtype)

    def part(i):
        padded[i, :, PH:PH + rows, PW:PW + cols] = a[i, :, :rows, :cols]
        out[i] = padded[i].reshape(-1, C, H2, s, W2, s).transpose(0, 1, 3, 5, 2, 4)

    threads.over_batch(out, part)
    return out.reshape(N, C * s * s, H2, W2)


def depth_to_space(g, s, padding, H, W):
    """The adjoint of ``space_to_depth``: g (N, C s^2, H2, W2) back on the pixels of an (N, C, H, W)
    array, each component's value at its pixel; the pixels no component holds (cut at the bottom or
    the right) get 0."""
    xp, (N, C2, H2, W2), (PH, PW) = backend.xp(g), g.shape, padding
    C = C2 // (s * s)
    rows, cols = min(H, s * H2 - PH), min(W, s * W2 - PW)
    full = g.reshape(N, C, s, s, H2, W2).transpose(0, 1, 4, 2, 5, 3).reshape(N, C, s * H2, s * W2)
    with backend.on_device(backend.device_of(g)):
        out = xp.zeros((N, C, H, W), g.dtype)
    out[:, :, :rows, :cols] = full[:, :, PH:PH + rows, PW:PW + cols]
    return out


class SpaceToDepthWinograd2d(Winograd2d):
    """A convolution of stride (s, s) by Winograd F(m x m, r x r) over the space-to-depth of x and w
    (module docstring); gx and gW are the adjoints of the two, applied to the stride-1 gradients. Its
    ``stride`` and ``padding`` are the layer's, as traces and benchmarks see them."""

    def __init__(self, stride, padding, groups, m):
        super().__init__((0, 0), groups, m)
        self.stride, self.padding = stride, padding

    def forward(self, x, w, b=None):
        (s, _), (PH, PW), (_, _, H, W), (_, _, k, _) = self.stride, self.padding, x.shape, w.shape
        r = -(-k // s)
        OH, OW = conv_outsize(H, k, s, PH), conv_outsize(W, k, s, PW)
        y = super().forward(space_to_depth(x, s, self.padding, OH + r - 1, OW + r - 1),
                            space_to_depth(w, s, (0, 0), r, r), b)
        self.saved.shapes = x.shape, w.shape
        return y

    def backward(self, gy):
        gx, gW, *gb = super().backward(gy)
        (s, _), (x_shape, w_shape) = self.stride, self.saved.shapes
        gx = None if gx is None else depth_to_space(gx, s, self.padding, *x_shape[2:])
        gW = None if gW is None else depth_to_space(gW, s, (0, 0), *w_shape[2:])
        return (gx, gW, *gb)


def winograd_conv(stride, padding, groups, m):
    """The Function that convolves by Winograd F(m x m, r x r) at ``stride``: ``Winograd2d`` at stride
    (1, 1), else over the space-to-depth (``SpaceToDepthWinograd2d``)."""
    if tuple(stride) == (1, 1):
        return Winograd2d(padding, groups, m)
    return SpaceToDepthWinograd2d(stride, padding, groups, m)
