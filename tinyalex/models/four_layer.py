"""The small CIFAR-10 network of AlexNet's Figure 1 and section 3.3 (lessons 02, 04, 05; ``tinyalex bench``)."""
from .. import nn
from ..functional import conv_outsize


def four_layer_cnn(activation="relu", lrn=False, pool=(3, 2), num_classes=10, init="he"):
    """The small CIFAR-10 network of the paper's Figure 1 and section 3.3: three conv layers and one FC.

        [conv 5x5, 32 -> f -> (LRN) -> max pool] -> [conv 5x5, 32 -> ...] -> [conv 5x5, 64 -> ...] -> fc

    in the paper's layer order (conv -> nonlinearity -> LRN -> pool). ``activation`` is "relu" or
    "tanh" (lesson 02), ``lrn`` switches the paper's LRN on (lesson 04), ``pool`` is the (kernel,
    stride) of every pooling layer: (3, 2) overlaps, (2, 2) does not (lesson 05). 32x32 inputs.

    ``init``: "he" (He-normal weights, zero biases), or "cuda-convnet", the initialisation of the
    example CIFAR-10 layer files of the paper's code (``layers-18pct.cfg``, ``layers-80sec.cfg``):
    weights ~ N(0, initW^2) with initW = 1e-4 for conv1 and 0.01 for the other layers, zero biases,
    chosen for inputs on the [0, 255] scale (``pixels="paper"``).

    Where it differs from those files: cuda-convnet's networks put the nonlinearity of conv1 after
    its max pool (the same thing for ReLU, which commutes with max), average-pool after conv2 and
    conv3, and round pooled sizes up (32 -> 16 -> 8 -> 4, here 32 -> 15 -> 7 -> 3).
    """
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    layers, channels, size = [], 3, 32
    for width in (32, 32, 64):
        layers += [nn.Conv2d(channels, width, 5, padding=2), act()]
        layers += [nn.LRN()] if lrn else []
        layers += [nn.MaxPool2d(*pool)]
        channels, size = width, conv_outsize(size, *pool, 0)
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * size * size, num_classes))
    if init == "cuda-convnet":
        weighted = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
        for i, layer in enumerate(weighted):
            nn.init.normal_(layer.weight, 1e-4 if i == 0 else 0.01)
            nn.init.constant_(layer.bias, 0.0)
    elif init != "he":
        raise ValueError(f"four_layer_cnn: init must be 'he' or 'cuda-convnet', got {init!r}")
    return model
