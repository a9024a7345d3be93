"""Operations with explicit backward passes: ``from tinyalex import functional as F``."""
from .activation import relu, sigmoid, tanh
from .basic import (add, concat, div, flatten, getitem, linear, matmul, mean, mul, reshape, split, sub,
                    sum, to_device, transpose)
from .conv import conv2d
from .im2col import col2im, conv_outsize, im2col
from . import reference
from .normalization import batch_norm, lrn
from .pooling import avg_pool2d, max_pool2d
from .dropout import dropout
from .loss import log_softmax, softmax, softmax_cross_entropy
