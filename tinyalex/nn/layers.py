"""Layers: each holds its parameters and calls one functional op (constructor arguments as PyTorch's).

Weights start from He normal (std sqrt(2 / fan_in), suited to ReLU nets) and biases from 0, drawn
from the engine generator; the models then apply their paper's scheme (see ``nn.init``).
"""
from .. import functional as F
from ..functional import checks, winograd
from ..functional.conv import check_groups
from ..functional.dropout import check_arguments
from . import init
from .module import Module


class _Weighted(Module):
    """A layer with ``weight`` (and optionally ``bias``), drawn by ``reset_parameters``."""

    def _make(self, weight_shape, bias):
        self.weight = init.parameter(weight_shape)
        self.bias = init.parameter(weight_shape[:1]) if bias else None
        if not init.is_deferred():
            self.reset_parameters()

    def reset_parameters(self):
        """Redraw the weight (He normal) and zero the bias."""
        init.he_normal_(self.weight)
        if self.bias is not None:
            init.constant_(self.bias, 0.0)


class Conv2d(_Weighted):
    """2-D convolution (paper section 3.5, ``F.conv2d``): weight (out, in/groups, KH, KW), bias (out,).

    (N, in_channels, H, W) -> (N, out_channels, OH, OW), OH = floor((H + 2 PH - KH) / SH) + 1.
    ``groups=2`` splits the channels as the paper's two GPUs do (section 3.2). ``algorithm`` is
    F.conv2d's ("auto", "im2col", "winograd").
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True,
                 algorithm="auto"):
        super().__init__()
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        winograd.check_algorithm("Conv2d", algorithm)
        self.algorithm = algorithm
        self.kernel_size = checks.pair("Conv2d", "kernel_size", kernel_size)
        self.stride = checks.pair("Conv2d", "stride", stride)
        self.padding = checks.pair("Conv2d", "padding", padding)
        if min(self.kernel_size + self.stride) < 1:
            raise ValueError(f"Conv2d: kernel_size and stride must be positive, got {kernel_size!r} and {stride!r}")
        check_groups("Conv2d", in_channels, out_channels, groups)
        self._make((out_channels, in_channels // groups) + self.kernel_size, bias)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups, self.algorithm)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={_short(self.kernel_size)}"
        s += f", stride={_short(self.stride)}" if self.stride != (1, 1) else ""
        s += f", padding={_short(self.padding)}" if self.padding != (0, 0) else ""
        s += f", groups={self.groups}" if self.groups != 1 else ""
        s += f", algorithm={self.algorithm!r}" if self.algorithm != "auto" else ""
        return s + (", bias=False" if self.bias is None else "")


class Linear(_Weighted):
    """Fully connected layer y = x W^T + b (fc6-fc8, paper section 3.5): (N, in) -> (N, out)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._make((out_features, in_features), bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}" + (", bias=False" if self.bias is None else "")


class ReLU(Module):
    """max(0, x) (paper section 3.1)."""

    def forward(self, x):
        return F.relu(x)


class Tanh(Module):
    """tanh(x), the saturating unit the paper compares ReLU with (Figure 1)."""

    def forward(self, x):
        return F.tanh(x)


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W), between the last pooling layer and fc6."""

    def forward(self, x):
        return F.flatten(x)


class LRN(Module):
    """Local response normalisation across ``n`` adjacent maps (paper section 3.3, ``F.lrn``).

    b = a / (k + alpha * sum of a^2 over the n neighbouring maps)^beta, with the paper's n=5, k=2,
    alpha=1e-4, beta=0.75 (alpha is not divided by n; PyTorch's LocalResponseNorm divides it).
    ``groups=2`` normalises each half of the channels on its own, as each of the paper's GPUs did
    with its own maps: the one-column form of the two-column network needs it to compute the same
    function (a map next to the split would otherwise see the other column's maps).
    """

    def __init__(self, n=5, k=2.0, alpha=1e-4, beta=0.75, groups=1):
        super().__init__()
        self.n, self.k, self.alpha, self.beta, self.groups = n, k, alpha, beta, groups

    def forward(self, x):
        return F.lrn(x, self.n, self.k, self.alpha, self.beta, self.groups)

    def extra_repr(self):
        return f"n={self.n}, k={self.k}, alpha={self.alpha}, beta={self.beta}" + \
            (f", groups={self.groups}" if self.groups != 1 else "")


class _Pool(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, kernel_size if stride is None else stride, padding

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}" + \
            (f", padding={self.padding}" if self.padding else "")


class MaxPool2d(_Pool):
    """Max pooling; kernel 3 at stride 2 is the paper's overlapping pooling (section 3.4)."""

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool):
    """Average pooling over KH x KW windows."""

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class Dropout(Module):
    """Drop each value with probability ``p`` while training (paper section 4.2, ``F.dropout``).

    ``mode="inverted"`` scales kept values by 1/(1-p) in training; ``mode="paper"`` keeps them and
    multiplies by (1-p) at test time, as the paper did.
    """

    def __init__(self, p=0.5, mode="inverted"):
        super().__init__()
        check_arguments("Dropout", p, mode)
        self.p, self.mode = p, mode

    def forward(self, x):
        return F.dropout(x, self.p, training=self.training, mode=self.mode)

    def extra_repr(self):
        return f"p={self.p}" + (f", mode={self.mode!r}" if self.mode != "inverted" else "")


class BatchNorm2d(Module):
    """Batch normalisation per channel (``F.batch_norm``): gamma ``weight``, beta ``bias``, and running
    statistics kept as buffers ``running_mean``, ``running_var`` (used in eval mode)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = init.parameter((num_features,), fill=1.0)
        self.bias = init.parameter((num_features,))
        self.register_buffer("running_mean", init.parameter((num_features,)).data)
        self.register_buffer("running_var", init.parameter((num_features,), fill=1.0).data)

    def forward(self, x):
        return F.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
                            training=self.training, momentum=self.momentum, eps=self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


def _short(pair):
    return pair[0] if pair[0] == pair[1] else pair
