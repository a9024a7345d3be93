# %% [markdown]
# # Lesson 03: two GPUs, two columns (paper section 3.2, Figure 2)
#
# **The claim.** One GTX 580 had 3 GB of memory, too little for the network, so the paper spread it over
# two GPUs: each holds half of every layer's kernels (a "column"), and the GPUs exchange data only at
# certain layers. conv3 takes all the kernel maps of conv2, from both GPUs; conv2, conv4 and conv5 see
# only the maps on their own GPU; the fully connected layers see everything. Compared with a network
# with half as many kernels in each conv layer on one GPU, the two-GPU net cut the top-1/top-5 error by
# 1.7%/1.2%, and took slightly less time to train.
#
# **The equation.** A convolution with `groups = 2` is exactly two convolutions side by side: split
# the input maps in two halves x = [x_0, x_1] and the kernels in two halves W = [W_0, W_1], then
#
#     conv(x, W, groups=2) = concat(conv(x_0, W_0), conv(x_1, W_1))          (along the channels)
#
# so a layer whose columns do not talk is a grouped convolution, with half the weights of a full one:
# C_out * (C_in / 2) * KH * KW instead of C_out * C_in * KH * KW.
#
# **The code.** `F.conv2d(..., groups=2)` (tinyalex/functional/conv.py: one matrix product per group);
# `F.split` / `F.concat` (tinyalex/functional/basic.py) hand each column its half and join the halves
# where the columns meet; `F.to_device` moves a tensor to another device, with a backward that moves
# the gradient back. `models.alexnet(columns=2, devices=(dev0, dev1))` (tinyalex/models/alexnet.py)
# builds the paper's two columns as real sub-modules, `model.columns[0]` and `model.columns[1]`.

# %%
import functools
import time

import numpy as np

import common
import tinyalex as ta
from tinyalex import functional as F
from tinyalex import models
from tinyalex.models.alexnet import to_grouped_state

lesson = common.Lesson("03", "two GPUs, two columns", "section 3.2, Figure 2",
                       runs={"quick": ("grouped vs split convolutions, and AlexNet in one and two columns on "
                                       "one 227x227 image", "10 s"),
                             "default": ("the same, timing forward+backward on a batch of 4 images", "1 min")})
rng = np.random.default_rng(lesson.args.seed)

# %% [markdown]
# ## 1. Two columns are a grouped convolution
#
# conv2 of the paper: 96 input maps (48 per column), 256 kernels of 5x5x48 (128 per column), on a
# 27x27 map, padding 2.

# %%
x = ta.tensor(rng.standard_normal((2, 96, 27, 27)), dtype="float64")
w = ta.tensor(rng.standard_normal((256, 48, 5, 5)) * 0.01, dtype="float64")
grouped = F.conv2d(x, w, padding=2, groups=2)
x0, x1 = F.split(x, 2)
w0, w1 = F.split(w, 2, axis=0)
columns = F.concat([F.conv2d(x0, w0, padding=2), F.conv2d(x1, w1, padding=2)])
print("output", grouped.shape, " max |grouped - two columns| =", float(np.abs(grouped.numpy() - columns.numpy()).max()))
print(f"weights: grouped {w.size:,} vs a full conv2 256x96x5x5 {256 * 96 * 25:,} (half)")

# %% [markdown]
# ## 2. The network in two columns, and in one
#
# `models.alexnet(columns=2, devices=(dev0, dev1))` puts column k on device k. Here both are the CPU
# (this machine has no GPU); with `--device cuda` column 0 goes to the GPU and column 1 stays on the
# CPU, which shows real crossings between devices. The quick run uses the CIFAR-sized AlexNet
# (`models.alexnet_cifar`, same columns and crossings, a quarter of the width, 32x32 inputs), the
# default run the paper's network on 227x227 images.
#
# The same weights, rearranged by `to_grouped_state`, make the one-column network with groups=2; in
# eval mode (no dropout) both must compute the same scores and, after backward, the same gradients.

# %%
devices = ("cpu", "cpu") if lesson.device == "cpu" else (lesson.device, "cpu")
if lesson.mode == "quick":
    build, shape, batch = functools.partial(models.alexnet_cifar, width=0.25), (3, 32, 32), 2
else:
    build, shape, batch = models.alexnet, (3, 227, 227), 4
two = build(columns=2, devices=devices)
one = build(columns=1, init=None)
one.load_state_dict(to_grouped_state(two.state_dict()))
one.to(devices[0])
print("two columns on", two.devices, f"- {two.num_parameters():,} parameters;",
      f"one column: {one.num_parameters():,} parameters")
ta.summary(two, shape)

images = ta.tensor(rng.random((batch, *shape)), dtype="float32", device=devices[0])
labels = ta.tensor(rng.integers(0, 10, size=batch), device=devices[0])


def step(model):
    """Scores, seconds for forward+backward, and the gradient of conv2's weights (both columns together)."""
    model.eval()
    model.zero_grad()
    start = time.perf_counter()
    scores = model(images)
    F.softmax_cross_entropy(scores, labels).backward()
    seconds = time.perf_counter() - start
    grads = {name: p.grad for name, p in model.named_parameters()}
    conv2 = (np.concatenate([ta.backend.to_numpy(grads[f"columns.{k}.conv2.weight"]) for k in (0, 1)])
             if "columns.0.conv2.weight" in grads else ta.backend.to_numpy(grads["conv2.weight"]))
    return scores.numpy(), seconds, conv2


repeats = lesson.pick(quick=2, default=3)  # the fastest of a few passes: the least disturbed by other work
runs = {name: [step(model) for _ in range(repeats)] for name, model in (("two", two), ("one", one))}
(s2, _, g2), (s1, _, g1) = runs["two"][-1], runs["one"][-1]
t2, t1 = (min(r[1] for r in runs[name]) for name in ("two", "one"))
print(f"max |scores, two columns - one column| = {np.abs(s2 - s1).max():.2e} (of scores up to {np.abs(s1).max():.2f})")
print(f"max |conv2 weight gradient, two columns - one column| = {np.abs(g2 - g1).max():.2e} "
      f"(of values up to {np.abs(g1).max():.2e})")
assert np.allclose(s2, s1, rtol=1e-4, atol=1e-5 * np.abs(s1).max())

# %% [markdown]
# ## 3. Where the columns talk, and what it costs
#
# After a forward pass the two-column model lists its exchanges in `model.transfers`: before conv3,
# fc6, fc7 and fc8 each column sends its output to the other, and at the end column 1's half of the
# scores goes to column 0 ("output"). Everywhere else the columns run on their own: that is the point
# of the design. On the paper's GTX 580s these exchanges went over PCI Express 2.0 (about 8 GB/s each
# way in theory); the paper notes that the GPUs could read and write each other's memory directly,
# without going through the host's memory.

# %%
per_image = {}
for t in two.transfers:
    per_image[t.before] = per_image.get(t.before, 0) + t.nbytes // batch
rows = [(before, n // 4, n, f"{128 * n / 8e9 * 1e3:.3f} ms") for before, n in per_image.items()]
print(common.table(rows, ("before", "float32 values per image (both ways)", "bytes per image",
                          "a batch of 128 at 8 GB/s")))
print(f"forward+backward, batch {batch} on {lesson.device} (fastest of {repeats}): two columns {t2:.3f} s, "
      f"one column with groups=2 {t1:.3f} s")

# %% [markdown]
# On one device the two forms do the same arithmetic, but the two-column form does it in twice as many
# matrix products of half the size (conv1, conv3 and the fully connected layers too, not only the
# grouped layers), and copies the maps where the columns meet: smaller products use a CPU less well,
# so on one device it is the slower form. Its point is the other case: on two devices each column's
# work runs on its own device at the same time, and only the exchanges above cross between them.
#
# The figure: what crosses between the columns, per image, at each crossing.

# %%
fig, (left, right) = common.plt.subplots(1, 2, figsize=(12, 4.2))
names = list(per_image)
left.bar(names, [per_image[k] / 1024 for k in names], color="C2")
left.set(xlabel="the columns exchange their outputs before", ylabel="KB per image (both directions, float32)",
         title="traffic between the columns")
for x, k in enumerate(names):
    left.text(x, per_image[k] / 1024, f"{per_image[k] // 4:,} values", ha="center", va="bottom", fontsize=8)
right.bar(["two columns\n" + " + ".join(devices), "one column\ngroups=2"], [t2, t1], color=["C0", "C1"])
right.set(ylabel="seconds", title=f"forward + backward, batch of {batch}, {'x'.join(map(str, shape))} inputs")
lesson.save(fig, "columns")

# %% [markdown]
# ## Exercises
#
# In `lessons/exercises/02_conv2d.py` you write `conv2d_forward` and `conv2d_backward` with `groups`
# (groups=2 is this lesson's two columns in one call), on NumPy arrays, from stubs that state the task and
# the shapes. Copy the file, fill it in, and `tinyalex grade 02_conv2d.py` checks your answers against the
# engine and finite differences.

# %%
lesson.done()
