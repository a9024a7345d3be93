"""Initialisers, and the named schemes the papers used, selectable by name with ``apply(model, name)``.

Every draw comes from the engine generator (``ta.manual_seed``) on the CPU and is then copied to the
parameter's device, so a seed gives the same initial weights on every device.

Schemes (weights of convolutional and fully connected layers; batch norm keeps gamma 1, beta 0):

- ``"alexnet-paper"``: w ~ N(0, 0.01^2); biases 1 in conv2, conv4, conv5, fc6 and fc7, 0 elsewhere
  ("this initialization accelerates the early stages of learning by providing the ReLUs with
  positive inputs", AlexNet section 5).
- ``"vgg-paper"``: w ~ N(0, 10^-2), biases 0. The VGG text (section 3.1) gives the *variance* 10^-2,
  i.e. std 0.1, not the std 0.01 often quoted; configuration A was trained from it and deeper ones
  from a trained A (``models.vgg.init_from_a``). Xavier/Glorot init made that step unnecessary.
- ``"he"``: w ~ N(0, 2 / fan_in) (He et al. 2015), biases 0: keeps the variance of ReLU activations
  constant through depth, so deep nets train from scratch. The layers' default.
- ``"glorot"``: w ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010), biases 0.
"""
import contextlib
import math

import numpy as np

from .. import backend
from ..tensor import Tensor

ALEXNET_BIAS_ONE = frozenset({"conv2", "conv4", "conv5", "fc6", "fc7"})
_deferred = False


@contextlib.contextmanager
def deferred():
    """Layers built inside leave their weights at zero instead of drawing them.

    Models use it to draw once with their own scheme; ``np.zeros`` only reserves memory, so a VGG-E
    (144 M parameters) built this way costs nothing until it is initialised or loaded.
    """
    global _deferred
    previous, _deferred = _deferred, True
    try:
        yield
    finally:
        _deferred = previous


def is_deferred():
    return _deferred


def parameter(shape, fill=0.0, dtype=np.float32):
    """A new learnable Tensor (CPU, float32) filled with ``fill``."""
    return Tensor(np.full(shape, fill, dtype) if fill else np.zeros(shape, dtype), requires_grad=True)


def fans(w):
    """(fan_in, fan_out) of a weight: (out, in) for a linear layer, (out, in/groups, KH, KW) for conv."""
    receptive = math.prod(w.shape[2:])
    return w.shape[1] * receptive, w.shape[0] * receptive


def _fill(w, values):
    with backend.on_device(w.device):  # the copy runs on the parameter's device, not the current one
        w.data[...] = backend.to_device(values, w.device)


def normal_(w, std, mean=0.0):
    """w ~ N(mean, std^2), in place."""
    rng = backend.default_generator.for_device("cpu")
    _fill(w, rng.standard_normal(w.shape, dtype=w.dtype) * w.dtype.type(std) + w.dtype.type(mean))


def uniform_(w, bound):
    """w ~ U(-bound, bound), in place."""
    rng = backend.default_generator.for_device("cpu")
    _fill(w, rng.uniform(-bound, bound, w.shape).astype(w.dtype))


def constant_(w, value):
    """w = value everywhere, in place."""
    _fill(w, value)


def he_normal_(w):
    """He (Kaiming) normal: std = sqrt(2 / fan_in)."""
    normal_(w, math.sqrt(2.0 / fans(w)[0]))


def glorot_uniform_(w):
    """Glorot (Xavier) uniform: bound = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(w)
    uniform_(w, math.sqrt(6.0 / (fan_in + fan_out)))


SCHEMES = {
    # name: (weight initialiser, bias value given the layer's name)
    "alexnet-paper": (lambda w: normal_(w, 0.01), lambda layer: 1.0 if layer in ALEXNET_BIAS_ONE else 0.0),
    "vgg-paper": (lambda w: normal_(w, 0.1), lambda layer: 0.0),
    "he": (he_normal_, lambda layer: 0.0),
    "glorot": (glorot_uniform_, lambda layer: 0.0),
}


def apply(model, scheme):
    """Initialise every convolutional and fully connected layer of ``model`` by the named scheme.

    A layer's name is the last part of its qualified name ("columns.1.conv2" -> "conv2"), which is
    how the AlexNet scheme finds the layers whose biases start at 1. Returns the model.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"init: unknown scheme {scheme!r}; expected one of {sorted(SCHEMES)}")
    init_weight, bias_value = SCHEMES[scheme]
    for name, m in model.named_modules():
        weight = m._parameters.get("weight")
        if weight is None or weight.ndim < 2:  # batch norm's gamma is 1-D and keeps its 1
            continue
        init_weight(weight)
        if m._parameters.get("bias") is not None:
            constant_(m.bias, bias_value(name.rsplit(".", 1)[-1]))
    return model


def initialised(model_name, init, schemes, make):
    """The model that ``make()`` builds, drawn once by the scheme ``schemes[init]`` (None: left at zero,
    to load weights into). The layers are built ``deferred``, so their own He draw is not wasted on
    weights redrawn at once; ``init`` is checked before anything is built."""
    if init not in schemes:
        raise ValueError(f"{model_name}: init must be one of {list(schemes)}, got {init!r}")
    with deferred():
        model = make()
    return model if schemes[init] is None else apply(model, schemes[init])
