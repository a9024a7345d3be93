# %% [markdown]
# # Lesson 00: a tour of tinyalex
#
# The AlexNet paper trains a network of eight learned layers with stochastic gradient descent; every
# step is a forward pass, a backward pass that applies the chain rule layer by layer, and an update.
# tinyalex makes each of those pieces small enough to read. This tour shows the four things the
# other lessons build on: tensors, devices, automatic differentiation on a tiny graph, and a trace of
# one forward/backward pass through AlexNet itself.
#
# ## 1. Tensors
#
# A `ta.Tensor` (tinyalex/tensor.py) wraps a raw array — NumPy on the CPU, CuPy on a GPU — and adds
# a gradient and a device. Arrays are NCHW (batch, channels, height, width) and float32 by default,
# as on the paper's GPUs; every operation also runs in float64 (lesson 01 needs it).

# %%
import weakref

import numpy as np

import common
import tinyalex as ta
from tinyalex import functional as F
from tinyalex import models

lesson = common.Lesson("00", "a tour of tinyalex", "sections 3-5 (the whole pipeline)",
                       runs={"quick": ("tensors, a tiny graph, and a trace of AlexNet-CIFAR (batch 2)", "5 s"),
                             "default": ("the same, then a trace of the paper's AlexNet on one 227x227 "
                                         "image", "20 s")})

x = ta.tensor([[1.0, 2.0, 3.0]])
print(x, "\nvalues:", x.numpy(), "dtype:", x.dtype, "device:", x.device)
print("float64 on request:", ta.tensor([1.0], dtype="float64").dtype)

# %% [markdown]
# ## 2. Devices
#
# A device is a string: "cpu", "cuda" or "cuda:N". Only tinyalex/backend.py knows NumPy from CuPy;
# every op asks it for the array module of its input, so one code path serves both. Moving data is
# always explicit (`t.to(device)`), and the move is itself an op with a backward (the gradient moves
# back) — that is how the paper's two GPU columns talk (lesson 03). Mixing devices inside one op is an
# error that names both devices.

# %%
print("GPU available:", ta.backend.gpu_available())
y = x.to(lesson.device)
print(f"x moved to {lesson.device}:", y)

# %% [markdown]
# ## 3. Autograd on a tiny graph
#
# One neuron of the paper's fully connected layers: h = relu(w . x + b). Each call of an op records a
# `Function` node that remembers where its inputs came from; `backward()` walks those nodes in reverse
# order and applies the chain rule:
#
#     dL/dw = dL/dh * relu'(z) * x,    dL/db = dL/dh * relu'(z),    z = w . x + b.

# %%
w = ta.tensor([[0.5, -0.25, 0.1]], requires_grad=True)
b = ta.tensor([0.2], requires_grad=True)
z = F.linear(x, w, b)          # z = x w^T + b, tinyalex/functional/basic.py
h = F.relu(z)                  # tinyalex/functional/activation.py
loss = (h * h).sum()           # L = h^2, so dL/dh = 2h
loss.backward()


def show_graph(t, depth=0, seen=None):
    """Print the recorded graph: each node is the Function that made a tensor, then its inputs."""
    seen = set() if seen is None else seen
    if t.creator is None:
        print("  " * depth + f"leaf {t.shape}" + (" (requires grad)" if t.requires_grad else ""))
    elif id(t.creator) in seen:  # h * h: both inputs are the same node
        print("  " * depth + f"{t.creator!r} (the same node as above)")
    else:
        seen.add(id(t.creator))
        print("  " * depth + repr(t.creator))
        for parent in t.creator.inputs:
            show_graph(parent, depth + 1, seen)


show_graph(loss)
zv = float(z.numpy()[0, 0])
print(f"z = {zv:.3f}, L = {loss.item():.4f}")
print("dL/dw by autograd:", w.grad, "  by hand:", 2 * zv * x.numpy())
print("dL/db by autograd:", b.grad, "  by hand:", [2 * zv])

# %% [markdown]
# ### What the graph keeps for backward
#
# A node keeps two things (tinyalex/tensor.py, `Function`): for each input an `Edge`
# (tinyalex/graph.py), which says where the input came from (the node that made it and which of its
# outputs it was) and its shape, dtype and device, but not its values; and the arrays its own backward
# needs, saved by name with `save_for_backward`: linear keeps x and w (dL/dw = dL/dz x needs x,
# dL/dx = dL/dz w needs w), ReLU keeps its output y (relu'(z) is 1 where y > 0). Nothing else. So an
# activation that no backward needs, here z before the ReLU, is freed as soon as our own variable lets
# go of it, and backward still runs through its node. In AlexNet that is the output of every conv and
# fully connected layer before its ReLU. Once a node has passed its gradient on, it drops what it saved too (`saved` becomes
# None), so the graph can be walked only once. PyTorch keeps its graph the same way.

# %%
z = F.linear(x, w, b)
h = F.relu(z)
node = h.creator


def saved(fn):
    return {name: getattr(value, "shape", value) for name, value in vars(fn.saved).items()}


print(f"{node}: inputs {node.inputs}, saved {saved(node)}")
print(f"{z.creator}: inputs {z.creator.inputs}, saved {saved(z.creator)}")
z_values = weakref.ref(z.data)
del z
print("z's values after `del z`:", "freed" if z_values() is None else "still held")
w.grad = b.grad = None  # gradients add up over backward calls: start again
(h * h).sum().backward()
print("backward through z's node without z's values: dL/dw =", w.grad, "(as above)")
print(f"{node} after backward: saved {node.saved}")

# %% [markdown]
# ## 4. One forward and backward pass through AlexNet, traced
#
# `ta.trace()` (tinyalex/trace.py) records every op as it runs, forward and backward: its name, the
# shapes, the device, the time and a few statistics. This is the paper's network of section 3.5 —
# conv, ReLU, LRN, overlapping max pooling, two columns, dropout, softmax — seen one call at a time.
# The quick run uses the CIFAR-sized AlexNet (32x32 inputs, lesson 09); the default run the paper's own
# network on a 227x227 image.

# %%
if lesson.mode == "quick":
    model, shape, n, model_classes = models.alexnet_cifar(num_classes=10), (3, 32, 32), 2, 10
else:
    model, shape, n, model_classes = models.alexnet(num_classes=1000), (3, 227, 227), 1, 1000
model.to(lesson.device)
rng = np.random.default_rng(lesson.args.seed)
images = ta.tensor(rng.random((n, *shape)), dtype="float32", device=lesson.device)  # pixels in [0, 1]
labels = ta.tensor(rng.integers(0, model_classes, size=n), device=lesson.device)
with ta.trace() as t:
    loss = F.softmax_cross_entropy(model(images), labels)
    loss.backward()
print(t.table())
print(f"loss {loss.item():.4f}; a network that guesses all classes alike scores ln({model_classes}) = {np.log(model_classes):.4f}")

# %% [markdown]
# Where does the time of one step go? It depends on the batch. A convolution's work grows with the
# number of images; a fully connected layer's backward pass must write a gradient for every one of its
# weights (58.6 million of them in the paper's net) whether the batch holds one image or 128. With one
# or two images, as here, the fully connected layers weigh far more than in training with batches of 128.

# %%
seconds = {}
for r in t.records:
    seconds.setdefault(r.name, {"forward": 0.0, "backward": 0.0})[r.phase] += r.seconds
total = sum(v["forward"] + v["backward"] for v in seconds.values())
for name in ("Conv2d", "Linear"):
    print(f"{name}: {sum(seconds[name].values()) / total:.0%} of the step "
          f"(forward {1e3 * seconds[name]['forward']:.0f} ms, backward {1e3 * seconds[name]['backward']:.0f} ms)")
names = sorted(seconds, key=lambda k: -(seconds[k]["forward"] + seconds[k]["backward"]))
fig, ax = common.plt.subplots(figsize=(9, 4.5))
pos = np.arange(len(names))
ax.barh(pos - 0.2, [1e3 * seconds[k]["forward"] for k in names], height=0.4, label="forward")
ax.barh(pos + 0.2, [1e3 * seconds[k]["backward"] for k in names], height=0.4, label="backward")
ax.set_yticks(pos, names)
ax.invert_yaxis()
ax.set(xlabel="milliseconds in one step (summed over calls)",
       title=f"{'AlexNet-CIFAR, batch 2' if lesson.mode == 'quick' else 'AlexNet, one 227x227 image'} on {lesson.device}")
ax.legend()
lesson.save(fig, "trace_time_per_op")
lesson.done()
