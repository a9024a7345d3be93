"""Normalisation: the paper's local response normalisation (section 3.3) and batch normalisation.

LRN makes neighbouring channels at one pixel compete ("lateral inhibition"); batch normalisation,
which replaced it in later networks, standardises each channel over the batch.
"""
from .. import backend, threads
from ..tensor import Function, Tensor
from . import checks


# ------------------------------------------------------------------ local response normalisation
def channel_window_sum(q, half, out=None):
    """s_i = sum_{j=max(0, i-half)}^{min(C-1, i+half)} q_j over axis 1 (channels), same shape as q.

    A loop over the 2*half offsets of the window, each adding a shifted slice of all pixels at once;
    channels past either edge are simply absent (the max/min in the bounds). ``out``: where s goes
    (not q's own buffer), else a new array.
    """
    if out is None:
        s = q.copy()
    else:
        s = out
        s[...] = q
    for d in range(1, half + 1):
        s[:, d:] += q[:, :-d]   # channel i - d, for i >= d
        s[:, :-d] += q[:, d:]   # channel i + d, for i < C - d
    return s


def negative_power(s, beta, out):
    """out = s^-beta (s > 0). For the paper's beta = 3/4 as 1 / (sqrt(s) sqrt(sqrt(s))): two square
    roots, a product and a reciprocal, each correctly rounded, cost a third of NumPy's general power
    (a transcendental per value, the largest part of LRN's forward); measured in float32 on s in
    [2, 1e6]: within 3.3 ulp of the exact power, 0.57 on average (NumPy's power: 0.50, 0.25)."""
    xp = backend.xp(s)
    if beta != 0.75:
        return xp.power(s, -beta, out=out)
    root = xp.sqrt(s, out=out)
    root *= xp.sqrt(root)
    return xp.reciprocal(root, out=root)


# Bytes of a group's maps (an image's, with groups=1) that LRN's passes cover at a time on the CPU: a
# chunk of images goes through all ~13 passes of forward (or ~10 of backward) while its slices of a,
# s, s_pow and y stay in the core's 2 MB cache, instead of each pass crossing memory for a whole part
# of the batch. In-step, in-process A/B on 2 threads (BENCHMARKS.md), LRN forward + backward ms,
# whole parts -> chunks of 128 KB, 512 KB, 1 MB, 2 MB: AlexNet-CIFAR at batch 128 115.4 -> 110.6,
# 90.8, 90.1, 102.8 (the step 1.033x at 512 KB); AlexNet at batch 16 36.6 -> 30.3 at 512 KB (the step
# 1.027x), 37.0 -> 31.1 at 1 MB.
CHUNK_BYTES = 512 << 10


def chunks(a, images):
    """The slice ``images`` of a's first axis cut into consecutive chunks of equal size, each of at
    most CHUNK_BYTES (one image at least); the whole slice for a CuPy array."""
    if backend.is_gpu_array(a):
        return [images]
    start, stop, _ = images.indices(a.shape[0])
    return threads.cut_by_size(start, stop, max(1, CHUNK_BYTES // max(1, a[:1].nbytes)))


class LRN(Function):
    """Forward and backward run in parts of the batch on threads (``threads``), each part a chunk of
    images at a time (``CHUNK_BYTES``): the passes are element-wise and window sums, memory- and
    transcendental-bound, no GEMM."""

    def __init__(self, n, k, alpha, beta, groups=1):
        self.n, self.k, self.alpha, self.beta, self.groups = n, k, alpha, beta, groups

    def forward(self, a):
        xp, shape = backend.xp(a), a.shape
        # each group's maps as images of their own, (N*G, C/G, H, W): windows stop at the group's edges
        a = a.reshape(-1, shape[1] // self.groups, *shape[2:])
        s, s_pow, y = xp.empty_like(a), xp.empty_like(a), xp.empty_like(a)

        def part(images):  # s_pow's buffer holds a^2 until s^-beta replaces it
            for i in chunks(a, images):
                q = xp.multiply(a[i], a[i], out=s_pow[i])
                si = channel_window_sum(q, self.n // 2, out=s[i])
                si *= self.alpha
                si += self.k
                xp.multiply(a[i], negative_power(si, self.beta, out=s_pow[i]), out=y[i])

        threads.over_batch(a, part)
        self.save_for_backward(a=a, s=s, s_pow=s_pow)
        return y.reshape(shape)

    def backward(self, gy):
        a, s, s_pow = self.saved.a, self.saved.s, self.saved.s_pow
        xp, shape, gy = backend.xp(a), gy.shape, gy.reshape(a.shape)
        # s and s_pow are this op's own buffers, read for the last time here: reusing them leaves one
        # new array (cross) instead of eight, sparing the page faults of fresh activation-sized arrays
        cross = xp.empty_like(a)

        def part(images):
            for i in chunks(a, images):
                t = xp.divide(s_pow[i], s[i], out=s[i])  # s^(-beta-1)
                t *= a[i]
                t *= gy[i]                                # gy_j a_j s_j^(-beta-1)
                # the window is symmetric, so the j whose window holds i are the channels in i's own window
                c = channel_window_sum(t, self.n // 2, out=cross[i])
                c *= a[i]
                c *= 2 * self.alpha * self.beta
                gx = s_pow[i]
                gx *= gy[i]
                gx -= c

        threads.over_batch(a, part)
        return (s_pow.reshape(shape),)


def lrn(x, n=5, k=2.0, alpha=1e-4, beta=0.75, groups=1):
    """Local response normalisation across channels (paper section 3.3):

        b_i = a_i / (k + alpha * sum_{j=max(0, i-n/2)}^{min(C-1, i+n/2)} a_j^2) ^ beta

    at every pixel (x, y) of every image, where a_i is channel i of ``x`` (after the ReLU) and n/2
    rounds down. alpha multiplies the plain sum: it is *not* divided by n, unlike PyTorch's and
    Caffe's layers (see ``lrn_params_from_pytorch``). The paper's values are the defaults:
    n = 5, k = 2, alpha = 1e-4, beta = 0.75.

    Backward (with s_i = k + alpha * sum_{j in window(i)} a_j^2, and j in window(i) <=> i in window(j)):

        db_j/da_i = [i = j] s_i^-beta - 2 alpha beta a_j a_i s_j^(-beta-1)   for i in window(j)
        gx_i = gy_i s_i^-beta - 2 alpha beta a_i sum_{j in window(i)} gy_j a_j s_j^(-beta-1)

    ``groups=2`` normalises each half of the channels on its own, as each of the paper's GPUs did
    with its own maps: the sum stops at the edge of the group (in one pass, no split and concat).

    Shapes: x (N, C, H, W) -> (N, C, H, W). n must be odd (the window is centred on channel i).
    """
    (x,) = checks.tensors(x)
    checks.floating("lrn", x)
    checks.ndim("lrn", x, 4, layout="N, C, H, W")
    if not isinstance(n, int) or n < 1 or n % 2 == 0:
        raise ValueError(f"lrn: n (the number of channels summed) must be a positive odd int, got {n!r}")
    if k <= 0:
        raise ValueError(f"lrn: k must be positive so the denominator is never 0, got k={k!r}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or x.shape[1] % groups:
        raise ValueError(f"lrn: groups must be a positive int that divides the {x.shape[1]} channels, got {groups!r}")
    return LRN(n, float(k), float(alpha), float(beta), groups)(x)


def lrn_params_from_pytorch(size, alpha=1e-4, beta=0.75, k=1.0):
    """The paper's (n, k, alpha, beta) for ``torch.nn.LocalResponseNorm(size, alpha, beta, k)``.

    PyTorch divides alpha by the window size: b_c = a_c (k + alpha/size * sum a^2)^-beta, so the
    paper's alpha is PyTorch's alpha / size. Use as ``F.lrn(x, **lrn_params_from_pytorch(5, 5e-4))``.
    Note PyTorch's default k is 1, the paper's 2. PyTorch allows an even size (with an
    off-centre window); the paper's formula does not, so an even size is refused.
    """
    return _params_from_averaged("lrn_params_from_pytorch", size, alpha, beta, k)


def lrn_params_from_caffe(local_size=5, alpha=1.0, beta=0.75, k=1.0):
    """The paper's (n, k, alpha, beta) for Caffe's LRN layer (norm_region ACROSS_CHANNELS).

    Caffe divides alpha by local_size as PyTorch does, so the paper's alpha is Caffe's alpha /
    local_size; its defaults (alpha = 1, k = 1) are not the paper's. Caffe's AlexNet model gives
    local_size = 5, alpha = 1e-4, beta = 0.75 (and k = 1), i.e. a paper alpha of 2e-5.
    """
    return _params_from_averaged("lrn_params_from_caffe", local_size, alpha, beta, k)


def _params_from_averaged(op, size, alpha, beta, k):
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"{op}: the paper's formula needs an odd window size, got {size!r}")
    return {"n": size, "k": float(k), "alpha": alpha / size, "beta": float(beta)}


# ------------------------------------------------------------------ batch normalisation
class BatchNorm(Function):
    """y = gamma * x_hat + beta with x_hat = (x - mean) / sqrt(var + eps), per channel.

    ``stats`` is None in training (the batch's own mean and variance, through which the gradient
    flows) or the running (mean, var) arrays in evaluation (constants).
    """

    def __init__(self, axes, eps, stats=None):
        self.axes, self.eps, self.stats = axes, eps, stats

    def forward(self, x, gamma, beta):
        shape = [1] * x.ndim
        shape[1] = x.shape[1]
        if self.stats is None:
            mean, var = x.mean(axis=self.axes), x.var(axis=self.axes)
        else:
            mean, var = self.stats
        inv_std = (var.astype(x.dtype) + self.eps) ** -0.5
        x_hat = (x - mean.reshape(shape).astype(x.dtype)) * inv_std.reshape(shape)
        self.save_for_backward(x_hat=x_hat, gamma=gamma.reshape(shape), inv_std=inv_std.reshape(shape),
                               batch_mean=mean, batch_var=var)
        return gamma.reshape(shape) * x_hat + beta.reshape(shape)

    def backward(self, gy):
        x_hat, gamma, inv_std = self.saved.x_hat, self.saved.gamma, self.saved.inv_std
        g_beta = gy.sum(axis=self.axes)
        g_gamma = (gy * x_hat).sum(axis=self.axes)
        if self.stats is not None:
            return gy * gamma * inv_std, g_gamma, g_beta
        # mean and variance depend on every x of the channel: d/dx of the standardisation, M = N*H*W
        shape = x_hat.shape[1:2] + (1,) * (x_hat.ndim - 2)
        M = x_hat.size // x_hat.shape[1]
        gx = (gamma * inv_std / M) * (M * gy - g_beta.reshape(shape) - x_hat * g_gamma.reshape(shape))
        return gx, g_gamma, g_beta


def batch_norm(x, gamma, beta, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5):
    """Batch normalisation (Ioffe & Szegedy 2015; not in the AlexNet paper, which used LRN instead).

    Training: for each channel c, over the batch (and the pixels of (N, C, H, W) maps),
        mean_c = E[x],  var_c = E[(x - mean_c)^2] (biased),
        y = gamma_c * (x - mean_c) / sqrt(var_c + eps) + beta_c,
    and, when given, the running averages are updated in place (raw arrays or Tensors):
        running_mean = (1 - momentum) * running_mean + momentum * mean_c
        running_var  = (1 - momentum) * running_var  + momentum * var_c * M / (M - 1)   (unbiased, M = N*H*W)
    as PyTorch does. Evaluation (``training=False``) uses running_mean and running_var instead.

    Backward in training (x_hat the standardised x, sums over the M values of a channel):
        g_beta = sum gy,  g_gamma = sum gy * x_hat,
        gx = gamma / (M sqrt(var + eps)) * (M gy - g_beta - x_hat * g_gamma).

    Shapes: x (N, C, H, W) or (N, C); gamma, beta, running_mean, running_var (C,) -> y like x.
    """
    x, gamma, beta = checks.tensors(x, gamma, beta)
    checks.floating("batch_norm", x, gamma, beta)
    if x.ndim not in (2, 4):
        raise ValueError(f"batch_norm: expected a 4-D (N, C, H, W) or 2-D (N, C) input, got shape {x.shape}")
    C = x.shape[1]
    running = [r.data if isinstance(r, Tensor) else r for r in (running_mean, running_var)]
    for name, t in (("gamma", gamma), ("beta", beta)) + tuple(zip(("running_mean", "running_var"), running)):
        if t is not None and tuple(t.shape) != (C,):
            raise ValueError(f"batch_norm: {name} must have shape ({C},) for {C} channels, got {tuple(t.shape)}")
    checks.same_device("batch_norm", x, gamma, beta)
    if any(r is not None and backend.device_of(r) != x.device for r in running):
        raise ValueError(f"batch_norm: running statistics must be on the input's device {x.device}")
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    if not training:
        if running[0] is None or running[1] is None:
            raise ValueError("batch_norm: evaluation (training=False) needs running_mean and running_var")
        return BatchNorm(axes, eps, stats=tuple(running))(x, gamma, beta)
    M = x.size // C
    if M < 2:
        raise ValueError(f"batch_norm: training needs more than one value per channel, got shape {x.shape}")
    fn = BatchNorm(axes, eps)
    y = fn(x, gamma, beta)
    with backend.on_device(x.device):  # in place on the statistics' device, not the current one
        for r, batch, correction in zip(running, (fn.saved.batch_mean, fn.saved.batch_var), (1.0, M / (M - 1))):
            if r is not None:
                r *= 1 - momentum
                r += (momentum * correction) * batch.astype(r.dtype)
    return y
