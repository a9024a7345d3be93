"""Exercise 7: one SGD step exactly as the paper writes it (section 5, "Details of learning").

    v_{i+1} = 0.9 v_i - 0.0005 eps w_i - eps dL/dw|_{w_i}
    w_{i+1} = w_i + v_{i+1}

momentum 0.9, weight decay 0.0005 and learning rate eps (0.01, divided by 10 when the validation error
stopped improving). Note where eps goes: the weight decay term is scaled by the learning rate too, and
the velocity v already carries the minus sign and eps (PyTorch keeps v = 0.9 v + g instead and
subtracts eps v: the same steps at a fixed eps, but a different v).

Grade it:  tinyalex grade 07_sgd.py
"""
import numpy as np


def sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):
    """One update: w, g = dL/dw, v (the same shape) -> (new w, new v); the inputs are not to be changed.

    lr is eps; momentum and weight_decay default to the paper's 0.9 and 0.0005.
    """
    raise NotImplementedError("sgd_step not implemented")
