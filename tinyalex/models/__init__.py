"""The networks of the two papers, and a registry by name for the command line (``models.get``)."""
import functools

from .alexnet import (TwoColumnNet, alexnet, alexnet_torchvision, load_torchvision_npz, to_columns_state,
                      to_grouped_state)
from .cifar import alexnet_cifar
from .four_layer import four_layer_cnn
from .vgg import CONFIGS as VGG_CONFIGS, init_from_a, vgg, vgg_cifar

_REGISTRY = {
    "alexnet": alexnet,
    "alexnet-cifar": alexnet_cifar,
    "alexnet-torchvision": alexnet_torchvision,
    "four-layer-cnn": four_layer_cnn,
    **{f"vgg-{c.lower()}": functools.partial(vgg, c) for c in VGG_CONFIGS},
    **{f"vgg-cifar-{c.lower()}": functools.partial(vgg_cifar, c) for c in VGG_CONFIGS},
}


def names():
    """Names ``get`` accepts: "alexnet", "alexnet-cifar", "alexnet-torchvision", "four-layer-cnn", "vgg-a" ... "vgg-cifar-e"."""
    return list(_REGISTRY)


def get(name, **kwargs):
    """Build the model registered as ``name`` (see ``names()``), passing ``kwargs`` to its builder."""
    if name not in _REGISTRY:
        raise ValueError(f"models.get: unknown model {name!r}; expected one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name](**kwargs)
