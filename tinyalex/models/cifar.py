"""AlexNet scaled for CIFAR-10's 32x32 images: the same kinds of layers in the same order.

Choices, and why:
- conv 96-256-384-384-256 with LRN after conv1 and conv2, FC 1024-1024 (the AlexNet-CIFAR-sized net
  of the benchmarks): the paper's widths, with the FC layers cut 4x because there are 10 classes,
  not 1000, and 50,000 images, not 1.2 million.
- conv1 is 5x5 at stride 1 with padding 2 (not 11x11/4): a 32x32 image has no room for a stride of
  4; conv2 keeps the paper's 5x5, conv3-5 its 3x3 (all padded to keep the size).
- overlapping 3x3/2 pooling (section 3.4) padded by 1, so the maps go 32 -> 16 -> 8 -> 4 and fc6
  sees 256 x 4 x 4 = 4096 values.
- two columns (or groups=2) and their crossings exactly as in the paper network; dropout 0.5 on the
  outputs of the two hidden FC layers.
- init="he" by default: with the paper's N(0, 0.01) each layer scales the signal by about
  0.01 * sqrt(fan_in / 2) (x0.06 at conv1, fan_in 75; x0.4 at conv5, fan_in 3456), so it reaches the
  classifier ~1e4 times smaller and the first epochs barely move; He's std sqrt(2 / fan_in) keeps the
  scale and the net trains from the first epoch. init="paper" stays selectable for the comparison.
- norm="lrn" (paper), "batchnorm" (batch norm after every conv, before its ReLU, no conv biases) or
  None: the LRN-vs-BatchNorm comparison.
- width scales every layer (rounded to even numbers of kernels) for quick runs on a CPU: width=1.0
  costs ~0.22 G multiply-adds per image, width=0.25 ~15 M (about 15x fewer).
"""
from .alexnet import Conv, Layout, build


def layout(width=1.0, image_size=32):
    """The CIFAR-10 plan, every layer's width multiplied by ``width``; for ``image_size`` x ``image_size``
    inputs (32 for CIFAR-10; another size only changes fc6's input, 256 x (S/8)^2 values)."""
    def w(n):
        return max(2, 2 * round(n * width / 2))
    return Layout(
        image_size=image_size,
        convs=(Conv(w(96), 5, padding=2, lrn=True, pool=True),
               Conv(w(256), 5, padding=2, own_column=True, lrn=True, pool=True),
               Conv(w(384), 3, padding=1),
               Conv(w(384), 3, padding=1, own_column=True),
               Conv(w(256), 3, padding=1, own_column=True, pool=True)),
        pool=(3, 2, 1),
        hidden=(w(1024), w(1024)),
    )


def alexnet_cifar(num_classes=10, columns=2, devices=None, norm="lrn", dropout_mode="inverted", init="he",
                  width=1.0, dropout=0.5, image_size=32):
    """AlexNet for 3x32x32 inputs (see the module docstring): 7,561,610 parameters at width 1 with LRN.

    Arguments as ``alexnet``; ``norm`` "lrn" | "batchnorm" | None; ``width`` scales all layers;
    ``dropout`` is the probability of dropping a unit of fc6 and fc7 (the paper's 0.5). A narrow net
    on little data learns much faster with less: at width 1/8 the hidden layers have 64 units per
    column, and p = 0.5 keeps the loss at ln 10 for epochs. ``image_size``: the side of the input
    images (e.g. a photo folder rescaled with ``tinyalex train --image-size 64``).
    """
    if width <= 0:
        raise ValueError(f"alexnet_cifar: width must be positive, got {width}")
    return build(layout(width, image_size), num_classes, columns, devices, norm, dropout_mode, init, dropout)
