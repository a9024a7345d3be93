"""The PyTorch twin: the recorded tape replayed with ``torch.nn.functional`` on copies of the same weights."""
from functools import partial

from .step import SGD


def import_torch(threads):
    """PyTorch set up like tinyalex: ``threads`` intra-op threads (if known), no TF32."""
    try:
        import torch
    except ImportError:
        raise RuntimeError("--against torch needs PyTorch, which is not installed (pip install torch; "
                           "tinyalex itself never needs it)") from None
    if threads:
        torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def torch_ops(torch):
    """tinyalex op label -> ``make(function)``, which returns the same computation as a PyTorch callable.

    The callables read the op's settings now and keep no reference to the tinyalex function (which
    holds the arrays it saved for backward). LRN: PyTorch divides alpha by the window size n (as
    Caffe does) and the paper does not, so the paper's alpha is passed as alpha * n; PyTorch's LRN
    has no groups, so a grouped LRN (one per column) runs on each group of channels and joins them.
    """
    T = torch.nn.functional
    return {
        "Conv2d": lambda fn: partial(T.conv2d, stride=fn.stride, padding=fn.padding, groups=fn.groups),
        "ReLU": lambda fn: T.relu,
        "LRN": lambda fn: grouped(torch, fn.groups, partial(T.local_response_norm, size=fn.n, alpha=fn.alpha * fn.n,
                                                             beta=fn.beta, k=fn.k)),
        "MaxPool2d": lambda fn: partial(T.max_pool2d, kernel_size=fn.kernel_size, stride=fn.stride,
                                        padding=fn.padding),
        "Linear": lambda fn: T.linear,
        "Dropout": lambda fn: partial(T.dropout, p=dropout_p(fn), training=True),
        "Reshape": lambda fn: partial(torch.reshape, shape=fn.shape),
        "Split": lambda fn: lambda x, at=fn.sections, axis=fn.axis: torch.tensor_split(x, at, axis),  # as NumPy
        "Concat": lambda fn: lambda *xs, axis=fn.axis: torch.cat(xs, axis),
        "SoftmaxCrossEntropy": lambda fn: lambda z, t: T.cross_entropy(z, t.long()),
    }


def grouped(torch, groups, f):
    """``f`` applied to each of ``groups`` equal parts of the channels, the results joined again."""
    return f if groups == 1 else lambda x: torch.cat([f(part) for part in torch.chunk(x, groups, 1)], 1)


def dropout_p(fn):
    """The drop probability p of a recorded training-time dropout, whose fixed array w is the mask
    scaled by 1 / (1 - p) (inverted dropout, the default): p = 1 - 1 / max(w)."""
    return 1 - 1 / float(fn.w.max())


def twin_of(torch, fn):
    make = torch_ops(torch).get(fn.label)
    if make is None:
        raise ValueError(f"bench: no PyTorch twin for the tinyalex op {fn.label}; add one to torch_ops")
    return make(fn)


def to_torch(torch, t):
    """A PyTorch copy of a tinyalex tensor (its own memory: PyTorch's updates must not touch ours)."""
    out = torch.from_dlpack(t.data).clone()
    return out.requires_grad_(t.requires_grad) if out.is_floating_point() else out


# PyTorch's SGD for the twin's update: "default" as torch.optim.SGD makes it unasked (on the CPU a
# loop over the tensors that adds the weight decay into a new tensor: 107-109 ms of its AlexNet step
# at batch 16 here), "fused" with fused=True (one kernel a tensor: 28 ms; PyTorch 2.4 or later on the
# CPU). BENCHMARKS.md compares both.
TORCH_SGD = {"default": {}, "fused": {"fused": True}}


class TorchTwin:
    """The recorded network replayed in PyTorch, with its own copies of the weights and the batch, and
    the paper's SGD made as ``sgd`` says (``TORCH_SGD``).

    Tensors are known by the ``id`` they had in the recording; the twin keeps no tinyalex array.
    """

    def __init__(self, torch, tape, sgd="default"):
        if sgd not in TORCH_SGD:
            raise ValueError(f"TorchTwin: sgd must be one of {', '.join(map(repr, TORCH_SGD))}, got {sgd!r}")
        self.leaves = {id(t): to_torch(torch, t) for t in tape.leaves()}
        self.ops = [(twin_of(torch, fn), [id(t) for t in inputs], [id(t) for t in outputs])
                    for fn, inputs, outputs in tape.entries]
        self.opt = torch.optim.SGD([v for v in self.leaves.values() if v.requires_grad], **SGD, **TORCH_SGD[sgd])

    def forward(self):
        """The replayed forward pass; returns the loss (the output of the last op)."""
        values = dict(self.leaves)
        for twin, inputs, outputs in self.ops:
            ys = twin(*(values[i] for i in inputs))
            values.update(zip(outputs, ys if isinstance(ys, (tuple, list)) else (ys,)))
        return ys

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.forward()
        loss.backward()
        self.opt.step()
        return loss
