"""AlexNet (Krizhevsky, Sutskever, Hinton 2012): the two-column network of Figure 2, its one-column
grouped form, and the torchvision layout.

The paper split every layer's kernels between two GPUs ("columns"). conv2, conv4 and conv5 see only
the maps of their own column; conv1 sees the image, and conv3 and the fully connected layers see both
columns, so the columns exchange their outputs before conv3, fc6, fc7 and fc8 (section 3.2). Here
each column is a real sub-module (``model.columns[0]``, ``model.columns[1]``) that may live on its own
device; the exchanges are explicit, differentiable device moves (``F.to_device``).

Decomposition: each column holds the first or second half of every layer's kernels (its rows of the
one-column weight). A layer that sees both columns takes the concatenation of both columns' maps in
the order (column 0, column 1), so fc6 in column 0 computes neurons 0..2047 of the 4096 from the
whole flattened 9216-vector, exactly the top half of the one-column fc6. fc8's 1000 outputs are
split 500/500 the same way and gathered on column 0's device for the softmax. Each column normalises
(LRN) its own maps, which is why the one-column form uses LRN with groups=2. So the one-column form
(``columns=1``: conv2, conv4, conv5 with groups=2) computes the same function from the same weights:
``to_grouped_state`` and ``to_columns_state`` convert between them (concatenate / split each array
along its first axis).
"""
import collections
import dataclasses

import numpy as np

from .. import functional as F
from .. import nn


@dataclasses.dataclass(frozen=True)
class Conv:
    """One convolutional layer of the plan (``channels``: kernels of both columns together)."""
    channels: int
    kernel: int
    stride: int = 1
    padding: int = 0
    own_column: bool = False  # sees only its own column's maps (conv2, conv4, conv5)
    lrn: bool = False         # followed by local response normalisation (after the ReLU)
    pool: bool = False        # followed by overlapping max pooling


@dataclasses.dataclass(frozen=True)
class Layout:
    """The layer plan shared by the paper network and its CIFAR-10 version."""
    image_size: int
    convs: tuple
    pool: tuple          # (kernel, stride, padding) of every pooling layer
    hidden: tuple        # widths of fc6 and fc7
    in_channels: int = 3

    def features(self):
        """Length of the flattened input of fc6: channels x H x W after the last pooling layer."""
        size = self.image_size
        for c in self.convs:
            size = F.conv_outsize(size, c.kernel, c.stride, c.padding)
            if c.pool:
                size = F.conv_outsize(size, *self.pool)
        return self.convs[-1].channels * size * size


# Section 3.5: 96 kernels 11x11x3 at stride 4, 256 of 5x5x48, 384 of 3x3x256, 384 of 3x3x192,
# 256 of 3x3x192; fully connected layers of 4096 neurons each.
PAPER = Layout(
    image_size=227,
    convs=(Conv(96, 11, stride=4, lrn=True, pool=True),
           Conv(256, 5, padding=2, own_column=True, lrn=True, pool=True),
           Conv(384, 3, padding=1),
           Conv(384, 3, padding=1, own_column=True),
           Conv(256, 3, padding=1, own_column=True, pool=True)),
    pool=(3, 2, 0),
    hidden=(4096, 4096),
)

INIT = {"paper": "alexnet-paper", "he": "he", "glorot": "glorot", None: None}

Transfer = collections.namedtuple("Transfer", "before source target shape nbytes")


def _half(n, column):
    """Column 0 holds the first ceil(n/2) units, column 1 the rest (np.array_split's rule)."""
    return (n + 1 - column) // 2


def column_layers(layout, num_classes, column=None, norm="lrn", dropout_mode="inverted", dropout=0.5):
    """The named layers of one column (``column`` 0 or 1) or of the one-column grouped net (None).

    Layer order as in the paper: conv -> ReLU -> LRN -> pool (sections 3.3, 3.4); dropout on the
    outputs of fc6 and fc7 ("we use dropout in the first two fully-connected layers", 4.2). With
    ``norm="batchnorm"`` every conv is followed by batch norm before its ReLU (and has no bias: the
    norm's beta takes its place); ``norm=None`` drops normalisation. ``dropout``: the probability of
    dropping a hidden unit (the paper's 0.5).
    """
    if norm not in ("lrn", "batchnorm", None):
        raise ValueError(f"alexnet: norm must be 'lrn', 'batchnorm' or None, got {norm!r}")
    grouped = column is None
    layers, maps = {}, layout.in_channels  # maps: channels of both columns entering the layer
    for i, c in enumerate(layout.convs, 1):
        if c.channels % 2 or (c.own_column and maps % 2):
            raise ValueError(f"alexnet: conv{i} needs an even number of maps to split between columns")
        local = c.own_column and not grouped
        layers[f"conv{i}"] = nn.Conv2d(maps // 2 if local else maps, c.channels if grouped else c.channels // 2,
                                       c.kernel, c.stride, c.padding, groups=2 if grouped and c.own_column else 1,
                                       bias=norm != "batchnorm")
        if norm == "batchnorm":
            layers[f"bn{i}"] = nn.BatchNorm2d(c.channels if grouped else c.channels // 2)
        layers[f"relu{i}"] = nn.ReLU()
        if c.lrn and norm == "lrn":
            layers[f"lrn{i}"] = nn.LRN(groups=2 if grouped else 1)
        if c.pool:
            layers[f"pool{i}"] = nn.MaxPool2d(*layout.pool)
        maps = c.channels
    layers["flatten"] = nn.Flatten()
    n_in, fc = layout.features(), len(layout.convs) + 1
    for width in layout.hidden:
        layers[f"fc{fc}"] = nn.Linear(n_in, width if grouped else _half(width, column))
        layers[f"relu{fc}"] = nn.ReLU()
        layers[f"drop{fc}"] = nn.Dropout(dropout, mode=dropout_mode)
        n_in, fc = width, fc + 1
    layers[f"fc{fc}"] = nn.Linear(n_in, num_classes if grouped else _half(num_classes, column))
    return layers


class TwoColumnNet(nn.Module):
    """Two columns of layers with the same names, exchanging their outputs before ``crossings``.

    forward: the image goes to both columns; layer by layer each column runs its own half, and before
    a crossing layer each column receives the other's output (moved to its device) and concatenates
    (column 0, column 1) along the channel axis. The two halves of the output are gathered on column
    0's device. Every exchange of the last forward is listed in ``transfers`` (layer, from column, to
    column, shape, bytes), the traffic the paper kept low by communicating "only in certain layers".
    """

    def __init__(self, columns, crossings):
        super().__init__()
        self.columns = nn.ModuleList(*columns)
        self.crossings = tuple(crossings)
        self.transfers = []

    @property
    def devices(self):
        """The device of each column."""
        return tuple(c.device for c in self.columns)

    def forward(self, x):
        devices, self.transfers = self.devices, []
        xs = [F.to_device(x, d) for d in devices]
        for name in self.columns[0].names():
            if name in self.crossings:
                xs = [self._gather(name, xs, k) for k in range(len(xs))]
            xs = [getattr(column, name)(h) for column, h in zip(self.columns, xs)]
        return self._gather("output", xs, 0)

    def _gather(self, before, xs, k):
        """Column k's view of all columns: their outputs moved to its device, concatenated."""
        target = self.columns[k].device
        for j, h in enumerate(xs):
            if j != k:
                self.transfers.append(Transfer(before, j, k, h.shape, h.data.nbytes))
        return F.concat([F.to_device(h, target) for h in xs], axis=1)


def build(layout, num_classes, columns, devices, norm, dropout_mode, init, dropout=0.5):
    """An AlexNet-shaped network from ``layout``: two columns, or one with grouped convolutions."""
    if columns not in (1, 2):
        raise ValueError(f"alexnet: columns must be 1 or 2, got {columns!r}")
    devices = (devices,) if isinstance(devices, str) else devices
    if devices is not None and len(devices) != columns:
        raise ValueError(f"alexnet: expected {columns} device(s), one per column, got {devices!r}")

    def make():
        if columns == 1:
            return nn.Sequential(column_layers(layout, num_classes, None, norm, dropout_mode, dropout))
        halves = [nn.Sequential(column_layers(layout, num_classes, k, norm, dropout_mode, dropout)) for k in range(2)]
        crossings = [f"conv{i}" for i, c in enumerate(layout.convs, 1) if i > 1 and not c.own_column]
        crossings += [f"fc{len(layout.convs) + i}" for i in range(1, len(layout.hidden) + 2)]
        return TwoColumnNet(halves, crossings)

    model = nn.init.initialised("alexnet", init, INIT, make)
    for part, device in zip(model.columns if columns == 2 else [model], devices or ()):
        part.to(device)
    return model


def alexnet(num_classes=1000, columns=2, devices=None, dropout_mode="inverted", init="paper"):
    """The network of the paper (section 3.5, Figure 2): 60,965,224 parameters.

    conv1 96@11x11/4 -> ReLU -> LRN -> maxpool 3/2 -> conv2 256@5x5 (own column) -> ReLU -> LRN ->
    maxpool 3/2 -> conv3 384@3x3 (both columns) -> ReLU -> conv4 384@3x3 (own) -> ReLU -> conv5 256@3x3
    (own) -> ReLU -> maxpool 3/2 -> fc6 4096 -> ReLU -> dropout -> fc7 4096 -> ReLU -> dropout -> fc8.

    Input 3x227x227. The paper says 224x224, but an 11x11 kernel at stride 4 gives 55x55 maps (as the
    paper's figures say) only from 227: floor((227 - 11) / 4) + 1 = 55, while 224 gives 54.
    Maps: 55 -> pool 27 -> 27 -> pool 13 -> 13 -> 13 -> 13 -> pool 6; fc6 sees 256 x 6 x 6 = 9216.

    ``columns=2``: a ``TwoColumnNet`` whose ``columns[k]`` may sit on ``devices[k]`` ("cpu",
    "cuda:0", ...); ``columns=1``: one ``Sequential`` with groups=2 in conv2, conv4, conv5 (and LRN per
    half). ``dropout_mode``: "inverted" or "paper" (x0.5 at test time). ``init``: "paper" (N(0, 0.01),
    biases 1 in conv2, conv4, conv5, fc6, fc7), "he", "glorot", or None (zeros, to load weights into).
    """
    return build(PAPER, num_classes, columns, devices, "lrn", dropout_mode, init)


def to_grouped_state(state):
    """State dict of the two-column form -> the one-column form (``columns.k.X`` joined into ``X``)."""
    names = sorted({key.split(".", 2)[2] for key in state if key.startswith("columns.")})
    return {n: np.concatenate([state[f"columns.0.{n}"], state[f"columns.1.{n}"]]) for n in names}


def to_columns_state(state):
    """State dict of the one-column form -> the two-column form (each array split along axis 0)."""
    return {f"columns.{k}.{n}": part for n, a in state.items() for k, part in enumerate(np.array_split(a, 2))}


# ------------------------------------------------------------------ torchvision layout
TORCHVISION_NAMES = {"features.0": "conv1", "features.3": "conv2", "features.6": "conv3", "features.8": "conv4",
                     "features.10": "conv5", "classifier.1": "fc6", "classifier.4": "fc7", "classifier.6": "fc8"}


def alexnet_torchvision(num_classes=1000, dropout_mode="inverted", init="he"):
    """The one-column AlexNet of torchvision (from Krizhevsky's "one weird trick" paper, 2014):
    64-192-384-256-256 kernels, no LRN, padding 2 in conv1 so a 224 input gives 55x55, dropout
    *before* fc6 and fc7. 61,100,840 parameters. Input 3x224x224 (torchvision's adaptive average
    pooling to 6x6 is the identity there, and is left out). Load torchvision weights with
    ``load_torchvision_npz``.
    """
    return nn.init.initialised("alexnet_torchvision", init, INIT, lambda: nn.Sequential({
        "conv1": nn.Conv2d(3, 64, 11, stride=4, padding=2), "relu1": nn.ReLU(), "pool1": nn.MaxPool2d(3, 2),
        "conv2": nn.Conv2d(64, 192, 5, padding=2), "relu2": nn.ReLU(), "pool2": nn.MaxPool2d(3, 2),
        "conv3": nn.Conv2d(192, 384, 3, padding=1), "relu3": nn.ReLU(),
        "conv4": nn.Conv2d(384, 256, 3, padding=1), "relu4": nn.ReLU(),
        "conv5": nn.Conv2d(256, 256, 3, padding=1), "relu5": nn.ReLU(), "pool5": nn.MaxPool2d(3, 2),
        "flatten": nn.Flatten(),
        "drop6": nn.Dropout(0.5, dropout_mode), "fc6": nn.Linear(9216, 4096), "relu6": nn.ReLU(),
        "drop7": nn.Dropout(0.5, dropout_mode), "fc7": nn.Linear(4096, 4096), "relu7": nn.ReLU(),
        "fc8": nn.Linear(4096, num_classes),
    }))


def load_torchvision_npz(model, path):
    """Load a torchvision AlexNet state_dict saved as .npz into ``alexnet_torchvision()``.

    Save it from PyTorch with
    ``np.savez(path, **{k: v.numpy() for k, v in torchvision.models.alexnet(weights=...).state_dict().items()})``.
    Keys ``features.0.weight`` ... ``classifier.6.bias`` map to ``conv1.weight`` ... ``fc8.bias``;
    every array's shape is checked. Returns the model.
    """
    with np.load(path, allow_pickle=False) as arrays:
        for key in arrays.files:
            if key.rpartition(".")[0] not in TORCHVISION_NAMES:
                raise ValueError(f"load_torchvision_npz: {path} holds {key!r}, which is not a key of "
                                 f"torchvision's AlexNet (expected {sorted(TORCHVISION_NAMES)} + .weight/.bias)")
        layer_kind = (key.rpartition(".") for key in arrays.files)
        model.load_state_dict({f"{TORCHVISION_NAMES[layer]}.{kind}": arrays[f"{layer}.{kind}"]
                               for layer, _, kind in layer_kind})
    return model
