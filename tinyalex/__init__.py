"""tinyalex: a from-scratch, readable deep-learning engine for the AlexNet and VGG papers."""
from . import backend
from .backend import manual_seed
from .tensor import Function, Tensor, Watcher, as_tensor, is_grad_enabled, no_grad, tensor
from . import functional

__version__ = "0.1.0"
from .gradcheck import gradcheck
from .trace import trace
from . import data
from . import nn, models, optim
from .summary import summary
