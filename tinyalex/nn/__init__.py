"""Layers and networks: ``from tinyalex import nn`` (thin wrappers over ``tinyalex.functional``)."""
from . import init
from .layers import (AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LRN, MaxPool2d, ReLU, Tanh)
from .module import Module, ModuleList, Sequential
