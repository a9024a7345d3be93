"""The benchmarked model and its training step, as in the paper (section 5), and the step's row."""
import numpy as np

from .. import backend, functional as F, models, nn, optim
from ..tensor import tensor
from .clocks import clock, interleaved, pause_for
from .report import row

# model name -> (image shape (C, H, W), number of classes, what else its builder is given)
ONE_COLUMN = {"columns": 1}
MODELS = {"alexnet-cifar": ((3, 32, 32), 10, ONE_COLUMN), "alexnet": ((3, 227, 227), 1000, ONE_COLUMN),
          "four-layer-cnn": ((3, 32, 32), 10, {})}
# the paper's update (section 5): momentum 0.9, weight decay 0.0005; the rate does not change the cost
SGD = dict(lr=0.01, momentum=0.9, weight_decay=5e-4)


def default_batch(model, device):
    """The paper's batch of 128, but 16 for the full AlexNet on a CPU (a step takes seconds there)."""
    return 16 if model == "alexnet" and backend.parse_device(device) == "cpu" else 128


def build(model, batch, device, algorithm="auto"):
    """(network, SGD optimiser, images, labels) on ``device``: random images and labels.

    AlexNet is built in its one-column form (groups=2 in the column-bound layers): the same
    function as the paper's two columns, and the form to run on a single device. Every convolution
    uses ``algorithm`` (``conv2d``'s: "auto" picks Winograd where it measured faster, "im2col" never).
    """
    (image, classes, options), rng = MODELS[model], backend.default_generator.for_device("cpu")
    net = models.get(model, num_classes=classes, **options)
    for conv in (m for m in net.modules() if isinstance(m, nn.Conv2d)):
        conv.algorithm = algorithm
    net.to(device)
    net.train()
    images = tensor(rng.standard_normal((batch, *image), dtype=np.float32), device=device)
    labels = tensor(rng.integers(0, classes, batch), device=device)
    return net, optim.SGD(net.parameters(), **SGD), images, labels


def loss_of(net, images, labels):
    """The loss the paper minimises (section 3.5): softmax cross-entropy of the net's outputs."""
    return F.softmax_cross_entropy(net(images), labels)


def train_step(net, opt, images, labels):
    """One step of the paper's training (section 5): forward, loss, backward, update."""
    opt.zero_grad()
    loss = loss_of(net, images, labels)
    loss.backward()
    opt.step()
    return loss


def bench_step(net, opt, images, labels, flops, twin, device, torch, warmup, repeat):
    """The training-step row: median ms, images/s and GFLOP/s (``flops``: those of a step's GEMMs)."""
    rounds = {"tinyalex": lambda: {"step": clock(device)(lambda: train_step(net, opt, images, labels))[0]}}
    if twin is not None:
        rounds["torch"] = lambda: {"step": clock(device, torch)(twin.step)[0]}
    medians = {k: v["step"] for k, v in interleaved(rounds, warmup, repeat, pause=pause_for(device)).items()}
    step = row("train step", medians, flops, shape=images.shape)
    step["images_per_s"] = {k: 1e3 * len(images) / ms for k, ms in medians.items()}
    return step
