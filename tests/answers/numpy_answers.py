"""Every exercise answered with NumPy alone, as an honest student would: no tinyalex, no framework.

The grader's tests use it as the submission that must pass every check, and as the base that the
planted mistakes change one function of.
"""
import numpy as np


def _out_size(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def im2col(x, KH, KW, SH, SW, PH, PW):
    N, C, H, W = x.shape
    OH, OW = _out_size(H, KH, SH, PH), _out_size(W, KW, SW, PW)
    xp = np.pad(x, ((0, 0), (0, 0), (PH, PH), (PW, PW)))
    col = np.empty((C, KH, KW, N, OH, OW), dtype=x.dtype)
    for i in range(KH):
        for j in range(KW):
            col[:, i, j] = xp[:, :, i:i + SH * (OH - 1) + 1:SH, j:j + SW * (OW - 1) + 1:SW].transpose(1, 0, 2, 3)
    return col.reshape(C * KH * KW, N * OH * OW)


def col2im(col, x_shape, KH, KW, SH, SW, PH, PW):
    N, C, H, W = x_shape
    OH, OW = _out_size(H, KH, SH, PH), _out_size(W, KW, SW, PW)
    col = col.reshape(C, KH, KW, N, OH, OW).transpose(3, 0, 1, 2, 4, 5)
    x = np.zeros((N, C, H + 2 * PH, W + 2 * PW), dtype=col.dtype)
    for i in range(KH):
        for j in range(KW):
            x[:, :, i:i + SH * (OH - 1) + 1:SH, j:j + SW * (OW - 1) + 1:SW] += col[:, :, i, j]
    return x[:, :, PH:PH + H, PW:PW + W]


def conv2d_forward(x, w, b, stride=(1, 1), padding=(0, 0), groups=1):
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    (SH, SW), (PH, PW) = stride, padding
    OH, OW = _out_size(H, KH, SH, PH), _out_size(W, KW, SW, PW)
    col = im2col(x, KH, KW, SH, SW, PH, PW).reshape(groups, Cg * KH * KW, -1)
    wg = w.reshape(groups, O // groups, Cg * KH * KW)
    y = (wg @ col).reshape(O, N, OH, OW).transpose(1, 0, 2, 3) + b.reshape(1, O, 1, 1)
    return y, (col, w, x.shape, stride, padding, groups)


def conv2d_backward(gy, cache):
    col, w, x_shape, (SH, SW), (PH, PW), groups = cache
    O, Cg, KH, KW = w.shape
    gy_mat = gy.transpose(1, 0, 2, 3).reshape(groups, O // groups, -1)
    wg = w.reshape(groups, O // groups, Cg * KH * KW)
    gw = (gy_mat @ col.transpose(0, 2, 1)).reshape(w.shape)
    gcol = (wg.transpose(0, 2, 1) @ gy_mat).reshape(groups * Cg * KH * KW, -1)
    return col2im(gcol, x_shape, KH, KW, SH, SW, PH, PW), gw, gy.sum(axis=(0, 2, 3))


def max_pool_forward(x, kernel_size=(3, 3), stride=(2, 2)):
    N, C, H, W = x.shape
    (KH, KW), (SH, SW) = kernel_size, stride
    col = im2col(x.reshape(N * C, 1, H, W), KH, KW, SH, SW, 0, 0)
    winner = col.argmax(axis=0)
    y = col[winner, np.arange(col.shape[1])].reshape(N, C, _out_size(H, KH, SH, 0), _out_size(W, KW, SW, 0))
    return y, (x.shape, col.shape, winner, kernel_size, stride)


def max_pool_backward(gy, cache):
    (N, C, H, W), col_shape, winner, (KH, KW), (SH, SW) = cache
    gcol = np.zeros(col_shape)
    gcol[winner, np.arange(col_shape[1])] = gy.reshape(-1)
    return col2im(gcol, (N * C, 1, H, W), KH, KW, SH, SW, 0, 0).reshape(N, C, H, W)


def _channel_window_sum(a, n):
    """out[:, i] = sum of a[:, j] over the n channels j centred on i (clipped at the ends)."""
    out, C = np.zeros_like(a), a.shape[1]
    reach = min(n // 2, C - 1)  # an offset past the last channel adds nothing
    for d in range(-reach, reach + 1):
        lo, hi = max(0, -d), min(C, C - d)
        out[:, lo:hi] += a[:, lo + d:hi + d]
    return out


def lrn_forward(x, n=5, k=2.0, alpha=1e-4, beta=0.75):
    s = k + alpha * _channel_window_sum(x ** 2, n)
    return x * s ** -beta, (x, s, n, alpha, beta)


def lrn_backward(gy, cache):
    x, s, n, alpha, beta = cache
    return gy * s ** -beta - 2 * alpha * beta * x * _channel_window_sum(gy * x * s ** (-beta - 1), n)


def dropout_forward(x, p, mask, mode="inverted", training=True):
    if training:
        scale = mask / (1 - p) if mode == "inverted" else mask
    else:
        scale = np.full_like(x, 1.0 if mode == "inverted" else 1 - p)
    return x * scale, scale


def dropout_backward(gy, cache):
    return gy * cache


def softmax_cross_entropy_forward(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    return -log_p[rows, labels].mean(), (np.exp(log_p), labels)


def softmax_cross_entropy_backward(gloss, cache):
    p, labels = cache
    g = p.copy()
    g[np.arange(len(labels)), labels] -= 1
    return g / len(labels) * gloss


def sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):
    v = momentum * v - weight_decay * lr * w - lr * g
    return w + v, v


def receptive_field(layers):
    r = 1
    for k, s in reversed(layers):
        r = (r - 1) * s + k
    return r


def vgg_parameter_count(cfg, in_channels=3, image_size=224, fc=(4096, 4096), num_classes=1000):
    count, channels, size = 0, in_channels, image_size
    for item in cfg:
        if item == "M":
            size //= 2
            continue
        out, k = item if isinstance(item, tuple) else (item, 3)
        count += channels * out * k * k + out
        channels = out
    widths = [channels * size * size, *fc, num_classes]
    return count + sum(a * b + b for a, b in zip(widths, widths[1:]))


# Winograd F(2x2, 3x3) with Lavin and Gray's matrices
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)


def winograd_tile(d, g):
    return AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T


def winograd_conv2d(x, w):
    N, C, H, W = x.shape
    TH, TW = -(-(H - 2) // 2), -(-(W - 2) // 2)
    padded = np.zeros((N, C, 2 * TH + 2, 2 * TW + 2))
    padded[:, :, :H, :W] = x
    tiles = np.array([[padded[:, :, i:i + 2 * TH:2, j:j + 2 * TW:2] for j in range(4)] for i in range(4)])
    V = np.einsum("ai,ijncst,bj->abncst", BT, tiles, BT)
    U = np.einsum("ai,ocij,bj->aboc", G, w, G)
    M = np.einsum("aboc,abncst->abnost", U, V)
    Y = np.einsum("ia,abnost,jb->nositj", AT, M, AT).reshape(N, len(w), 2 * TH, 2 * TW)
    return Y[:, :, :H - 2, :W - 2]
