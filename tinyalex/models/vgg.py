"""VGG (Simonyan & Zisserman 2014): configurations A-E of Table 1, dense evaluation, CIFAR variant.

Every conv is 3x3 at stride 1 padded by 1 (configuration C also has 1x1 convs), followed by ReLU;
five 2x2/2 max-pooling layers separate five stacks; then fc6 4096 -> fc7 4096 -> fc8 classes with
dropout 0.5 on the outputs of fc6 and fc7 (section 3.1). Layers are named as in the released
models: ``conv3_2`` is the second conv of the third stack.
"""
from .. import functional as F
from .. import nn
from ..tensor import Tensor

# Table 1, one string per column: "|" is a max-pooling layer.
CONFIGS = {
    "A": "conv3-64 | conv3-128 | conv3-256 conv3-256 | conv3-512 conv3-512 | conv3-512 conv3-512 |",
    "A-LRN": "conv3-64 LRN | conv3-128 | conv3-256 conv3-256 | conv3-512 conv3-512 | conv3-512 conv3-512 |",
    "B": "conv3-64 conv3-64 | conv3-128 conv3-128 | conv3-256 conv3-256 | conv3-512 conv3-512 | "
         "conv3-512 conv3-512 |",
    "C": "conv3-64 conv3-64 | conv3-128 conv3-128 | conv3-256 conv3-256 conv1-256 | "
         "conv3-512 conv3-512 conv1-512 | conv3-512 conv3-512 conv1-512 |",
    "D": "conv3-64 conv3-64 | conv3-128 conv3-128 | conv3-256 conv3-256 conv3-256 | "
         "conv3-512 conv3-512 conv3-512 | conv3-512 conv3-512 conv3-512 |",
    "E": "conv3-64 conv3-64 | conv3-128 conv3-128 | conv3-256 conv3-256 conv3-256 conv3-256 | "
         "conv3-512 conv3-512 conv3-512 conv3-512 | conv3-512 conv3-512 conv3-512 conv3-512 |",
}
INIT = {"paper": "vgg-paper", "he": "he", "glorot": "glorot", None: None}
# "we initialised the first four convolutional layers and the last three fully-connected layers with
# the layers of net A" (section 3.1); named by position in their stack, they fit every deeper net.
FROM_A = ("features.conv1_1", "features.conv2_1", "features.conv3_1", "features.conv3_2",
          "classifier.fc6", "classifier.fc7", "classifier.fc8")


def features(config, width=1.0):
    """The convolutional part of a configuration, as a Sequential of named layers; also its channels."""
    if config not in CONFIGS:
        raise ValueError(f"vgg: unknown configuration {config!r}; expected one of {sorted(CONFIGS)}")
    layers, channels, stack, index = {}, 3, 1, 1
    for token in CONFIGS[config].split():
        if token == "|":
            layers[f"pool{stack}"] = nn.MaxPool2d(2, 2)
            stack, index = stack + 1, 1
        elif token == "LRN":
            # "the parameters for the LRN layer are those of (Krizhevsky et al., 2012)"
            layers[f"lrn{stack}"] = nn.LRN()
        else:
            kernel, out = (int(v) for v in token[len("conv"):].split("-"))
            out = max(1, round(out * width))
            name = f"{stack}_{index}"
            layers[f"conv{name}"] = nn.Conv2d(channels, out, kernel, padding=kernel // 2)
            layers[f"relu{name}"] = nn.ReLU()
            channels, index = out, index + 1
    return nn.Sequential(layers), channels


def classifier(in_features, hidden, num_classes, dropout_mode):
    return nn.Sequential({
        "fc6": nn.Linear(in_features, hidden), "relu6": nn.ReLU(), "drop6": nn.Dropout(0.5, dropout_mode),
        "fc7": nn.Linear(hidden, hidden), "relu7": nn.ReLU(), "drop7": nn.Dropout(0.5, dropout_mode),
        "fc8": nn.Linear(hidden, num_classes),
    })


class VGG(nn.Module):
    """``features`` (conv stacks) -> flatten -> ``classifier`` (fc6, fc7, fc8) for a fixed image size."""

    def __init__(self, config, num_classes, image_size, width, hidden, dropout_mode):
        super().__init__()
        self.config, self.image_size = config, image_size
        self.features, channels = features(config, width)
        self.spatial = image_size // 32  # five 2x2 poolings: 224 -> 7, 32 -> 1
        self.classifier = classifier(channels * self.spatial ** 2, hidden, num_classes, dropout_mode)

    def forward(self, x):
        return self.classifier(F.flatten(self.features(x)))

    def to_fully_convolutional(self):
        """The dense-evaluation net of section 3.2: fc6 becomes a 7x7 conv, fc7 and fc8 1x1 convs.

        Applied to a whole image of any size >= the training size, it gives a class score map, which
        is averaged over its positions into one score vector ((N, classes)). On the training size
        the map is 1x1 and the scores equal this net's. The new net shares this one's ``features``
        and views the FC weights as kernels (the same arrays: training either changes both).
        """
        fc = [self.classifier[n] for n in ("fc6", "fc7", "fc8")]
        with nn.init.deferred():
            convs = [nn.Conv2d(f.in_features // k ** 2, f.out_features, k)
                     for f, k in zip(fc, (self.spatial, 1, 1))]
        for conv, f in zip(convs, fc):
            conv.weight = Tensor(f.weight.data.reshape(conv.weight.shape), requires_grad=True)
            conv.bias = f.bias
        convs = dict(zip(("fc6", "fc7", "fc8"), convs))
        dense = nn.Sequential({n: convs.get(n, m) for n, m in zip(self.classifier.names(), self.classifier)})
        return FullyConvolutionalVGG(self.features, dense)

    def extra_repr(self):
        return f"config={self.config!r}"


class FullyConvolutionalVGG(nn.Module):
    """VGG with convolutional fc6-fc8 (see ``VGG.to_fully_convolutional``): image -> averaged scores."""

    def __init__(self, features, classifier):
        super().__init__()
        self.features, self.classifier = features, classifier

    def forward(self, x):
        return F.mean(self.classifier(self.features(x)), axis=(2, 3))


def vgg(config, num_classes=1000, init="paper", dropout_mode="inverted", width=1.0):
    """A VGG configuration of Table 1 for 3x224x224 images: "A", "A-LRN", "B", "C", "D" or "E".

    Parameters (Table 2: 133, 133, 133, 134, 138, 144 million): A and A-LRN 132,863,336; B
    133,047,848; C 133,638,952; D 138,357,544; E 143,667,240. ``init``: "paper" (N(0, variance 1e-2),
    i.e. std 0.1 as the text says; see ``nn.init``), "he", "glorot" or None (zeros). The paper
    trained deeper nets from a trained A: see ``init_from_a``. ``width`` scales every layer (a narrow
    net keeps the same code path for lessons and tests).
    """
    return nn.init.initialised("vgg", init, INIT, lambda: VGG(config, num_classes, 224, width,
                                                               max(1, round(4096 * width)), dropout_mode))


def vgg_cifar(config="A", num_classes=10, width=0.25, init="he", dropout_mode="inverted"):
    """A VGG configuration for 3x32x32 images: five poolings leave 1x1 maps, so fc6 sees ``512 * width``
    values; the hidden FC layers have 512 * width units. width=0.25 (16-32-64-128-128 kernels) runs
    a CIFAR-10 epoch of configuration A on a CPU in minutes. He init, as deep nets need.
    """
    return nn.init.initialised("vgg", init, INIT, lambda: VGG(config, num_classes, 32, width,
                                                               max(1, round(512 * width)), dropout_mode))


def init_from_a(model, trained_a):
    """Initialise a deeper configuration from a trained A, as the paper did (section 3.1).

    Copies conv1_1, conv2_1, conv3_1, conv3_2 (A's first four convs, which have the same shapes in
    every configuration) and fc6, fc7, fc8; the other layers keep their random initialisation.
    Returns the model.
    """
    source = trained_a.state_dict()
    model.load_state_dict({k: v for k, v in source.items() if k.rsplit(".", 1)[0] in FROM_A}, strict=False)
    return model

