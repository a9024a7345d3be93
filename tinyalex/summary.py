"""Layer tables: output shape, neurons, parameters and multiply-adds of every layer of a model.

For the paper's AlexNet the neuron counts are the paper's (section 3.5): 290,400 - 186,624 - 64,896 -
64,896 - 43,264 - 4096 - 4096 - 1000. The paper prints 253,440 for the first layer, but conv1 has
55 x 55 x 96 = 290,400 neurons (55 x 55 maps of 96 kernels, both columns); 253,440 = 55 x 48 x 96,
as if one side of the map were 48 (the kernels per column): most likely a slip, as no choice of
input size or padding gives it. The neurons add up to 659,272: the paper's "650,000 neurons".
"""
import dataclasses
import math
import re

import numpy as np

from . import backend
from .nn import Conv2d, Linear
from .graph import Watcher
from .tensor import no_grad, tensor


@dataclasses.dataclass
class Row:
    """One layer; in a two-column net, both columns' halves of it together."""
    layer: str
    kind: str
    output_shape: tuple   # per image, e.g. (96, 55, 55)
    neurons: int          # units computing a weighted sum (conv and FC outputs); 0 for other layers
    parameters: int
    multiply_adds: int    # per image
    devices: tuple        # the device of each column holding the layer


@dataclasses.dataclass
class Summary:
    rows: list
    total_parameters: int
    total_multiply_adds: int
    text: str

    def __str__(self):
        return self.text


def _multiply_adds(m, out_shape):
    """Per image: each output of a conv sums (in/groups) x KH x KW products, each FC output ``in``."""
    if isinstance(m, Conv2d):
        return math.prod(out_shape) * (m.in_channels // m.groups) * math.prod(m.kernel_size)
    if isinstance(m, Linear):
        return m.out_features * m.in_features
    return 0


class _Layers(Watcher):
    """Records (name, module, output) of each call of a layer (a module without sub-modules) of the model."""

    def __init__(self, names):
        self.names, self.records = names, []

    def on_module(self, m, inputs, output):
        if not m._modules and id(m) in self.names:
            self.records.append((self.names[id(m)], m, output))


def summary(model, input_shape, device=None, print_table=True):
    """Run one image of ``input_shape`` (C, H, W) through ``model`` and tabulate its layers.

    The forward runs in eval mode under ``no_grad`` on a zero image (no random numbers are drawn)
    on ``device`` (default: the first parameter's). Columns of a two-column net (layers named
    ``columns.k.<name>``) are merged into one row per layer, with the device of each column.
    Prints the table (unless ``print_table=False``) and returns a ``Summary``.
    """
    first = next(iter(model.parameters()), None)
    device = backend.parse_device(device or (first.device if first is not None else "cpu"))
    layers = _Layers({id(m): name for name, m in model.named_modules()})
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        x = tensor(np.zeros((1,) + tuple(input_shape), np.float32 if first is None else first.dtype), device=device)
        with no_grad(), layers:
            model(x)
    finally:
        for m, mode in modes:
            m.training = mode
    rows = _merge_columns(layers.records)
    text = _format(rows, getattr(model, "transfers", None))
    if print_table:
        print(text)
    return Summary(rows, sum(r.parameters for r in rows), sum(r.multiply_adds for r in rows), text)


def _merge_columns(records):
    rows, halves, seen = [], {}, set()  # halves: layer name -> its row, for layers split between columns
    for name, m, y in records:
        layer = re.sub(r"(^|\.)columns\.\d+\.", r"\1", name)
        shape = tuple(y.shape[1:])
        macs = _multiply_adds(m, shape)
        params = 0 if id(m) in seen else sum(p.size for p in m._parameters.values())  # a reused layer: once
        seen.add(id(m))
        if layer not in halves:
            rows.append(Row(layer, type(m).__name__, shape, math.prod(shape) if macs else 0, params, macs, (y.device,)))
            if layer != name:
                halves[layer] = rows[-1]
            continue
        r = halves[layer]  # the other column's half: its maps (or features) join along axis 1
        r.output_shape = (r.output_shape[0] + shape[0],) + shape[1:]
        r.neurons += math.prod(shape) if macs else 0
        r.parameters += params
        r.multiply_adds += macs
        r.devices += (y.device,)
    return rows


def _format(rows, transfers):
    header = ("layer", "kind", "output", "neurons", "parameters", "mult-adds", "device")
    lines = [header] + [(r.layer, r.kind, "x".join(map(str, r.output_shape)), f"{r.neurons:,}" if r.neurons else "",
                         f"{r.parameters:,}" if r.parameters else "", f"{r.multiply_adds:,}" if r.multiply_adds else "",
                         ", ".join(r.devices)) for r in rows]
    lines.append(("total", "", "", f"{sum(r.neurons for r in rows):,}", f"{sum(r.parameters for r in rows):,}",
                  f"{sum(r.multiply_adds for r in rows):,}", ""))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = (3, 4, 5)  # right-aligned columns
    text = ["  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))).rstrip()
            for line in lines]
    text.insert(1, "-" * len(text[0]))
    text.insert(-1, "-" * len(text[0]))
    if transfers:
        values = sum(math.prod(t.shape[1:]) for t in transfers)
        text.append(f"columns exchange {values:,} values per image, before "
                    + ", ".join(dict.fromkeys(t.before for t in transfers)))
    return "\n".join(text)
