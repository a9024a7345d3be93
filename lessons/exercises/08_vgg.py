"""Exercise 8: VGG's receptive fields and parameter counts (Simonyan & Zisserman 2014, sections 2.1-2.3).

VGG uses only 3x3 convolutions (stride 1, padding 1: the size is kept) and 2x2 max pooling at stride 2
(the size halves), then three fully connected layers 4096-4096-1000. Section 2.3: "a stack of two 3x3
conv. layers (without spatial pooling in between) has an effective receptive field of 5x5; three such
layers have a 7x7 effective receptive field", with fewer parameters than one 7x7 layer:
3 (3^2 C^2) = 27 C^2 against 7^2 C^2 = 49 C^2. Table 2 gives the sizes of the networks A to E: 133,
133, 134, 138 and 144 million parameters.

Grade it:  tinyalex grade 08_vgg.py
"""
import numpy as np


def receptive_field(layers):
    """Receptive field, in input pixels along one side, of one output unit of a stack of layers.

    layers: a list of (kernel_size, stride) from the input up, e.g. [(3, 1), (3, 1), (3, 1)] -> 7 and
    [(11, 4), (3, 2)] (AlexNet's conv1 and pool1) -> 19. Padding does not change it.
    Hint: going down one layer of kernel k, a window of r units becomes (r - 1) * s + k units, where s is
    that layer's stride.
    """
    raise NotImplementedError("receptive_field not implemented")


def vgg_parameter_count(cfg, in_channels=3, image_size=224, fc=(4096, 4096), num_classes=1000):
    """Number of learnable parameters (weights and biases) of a VGG network.

    cfg lists the layers in order, as in the paper's Table 1: an int c is a 3x3 convolution with c output
    channels (padding 1), a pair (c, k) a k x k convolution (padding k // 2; configuration C has 1x1 ones),
    "M" a 2x2 max pooling at stride 2 (the size halves, rounding down). After the last layer the
    (channels x size x size) maps feed fully connected layers of widths fc, then num_classes outputs.
    Example: cfg [64, "M"], in_channels 3, image_size 224, fc (4096, 4096), 1000 classes:
    (3*9*64 + 64) + (64*112*112*4096 + 4096) + (4096*4096 + 4096) + (4096*1000 + 1000).
    """
    raise NotImplementedError("vgg_parameter_count not implemented")
