# %% [markdown]
# # Lesson 12: VGG, very deep networks of 3x3 convolutions (Simonyan & Zisserman 2014)
#
# **The claims.**
#
# - **Small filters, stacked** (VGG section 2.3): instead of AlexNet's 11x11 and 5x5 kernels, every
#   conv is 3x3 at stride 1. Two of them in a row (no pooling between) see a 5x5 patch of their input,
#   three see 7x7. Three 3x3 layers instead of one 7x7 give three ReLUs instead of one ("the decision
#   function more discriminative") and fewer weights: with C channels in and out,
#   3 (3^2 C^2) = **27 C^2** against 7^2 C^2 = **49 C^2**, 81% more for the single layer.
# - **Depth** (Table 1, Table 3): configurations A (11 weight layers) to E (19) differ only in depth,
#   have 133 to 144 million parameters (Table 2), and the error falls with depth: top-1 29.6% (A) to
#   27.0% (D) at a fixed test scale; A-LRN shows LRN does not help.
# - **Dense evaluation** (section 3.2): at test time the fully connected layers become convolutions
#   (fc6 a 7x7 conv, fc7 and fc8 1x1), so the net runs on a whole image of any size and gives a map of
#   class scores, averaged into one vector. **Multi-scale testing** (4.2) runs it on several rescaled
#   copies Q of the image and averages the posteriors: D goes from 25.6% / 8.1% top-1/top-5 (one
#   scale, jittered training) to 24.8% / 7.5%.
#
# **The equations.** The receptive field of n stacked k x k, stride-1 convs is n (k - 1) + 1 pixels
# wide: 3, 5, 7 for n = 1, 2, 3 with k = 3. A conv layer with C channels in and out and a k x k
# kernel holds k^2 C^2 weights.
#
# **The code.** `models.vgg(config)` builds Table 1's columns from the strings in
# `tinyalex.models.vgg.CONFIGS`; `models.vgg_cifar` the same for 32x32 images;
# `VGG.to_fully_convolutional()` the dense form; `data.transforms.resize_shorter` / `multi_scale` the
# test scales.

# %%
import numpy as np

import common
import tinyalex as ta
from tinyalex import data, functional as F, models, nn
from tinyalex.data import transforms as T

lesson = common.Lesson("12", "VGG", "VGG sections 2.3, 3.2, 4 and Tables 1-3",
                       runs={"quick": ("receptive fields, Table 2's counts, a tiny depth run (64 images) and "
                                       "dense multi-scale testing", "20 s"),
                             "default": ("receptive fields, Table 2's counts, VGG-CIFAR A, B, D and a jittered D (1/4 "
                                         "width) on 1,000 synthetic images, 10 epochs each, and dense "
                                         "multi-scale testing", "9 min"),
                             "data": ("VGG-CIFAR A, B, D and a D trained with scale jittering on CIFAR-10 at 1/4 "
                                      "width, 8 epochs each, and dense multi-scale testing",
                                      "70-95 min on a 2-core CPU beside another run (measured: 71, 87 and 94 min), minutes on a GPU")})

# %% [markdown]
# ## 1. Receptive fields, measured by backpropagation
#
# A stack of n 3x3 convs (all weights 1, no padding issues: a 15x15 input) and the gradient of its
# central output unit with respect to the input: the input pixels with a nonzero gradient are exactly
# the ones that unit sees.

# %%
rows = []
for n in (1, 2, 3):
    stack = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(n)])
    for conv in stack:
        nn.init.constant_(conv.weight, 1.0)
    x = ta.tensor(np.zeros((1, 1, 15, 15)), dtype="float32", requires_grad=True)
    out = stack(x)
    F.sum(out[:, :, 7, 7]).backward()
    seen = np.argwhere(x.grad[0, 0] != 0)
    side = seen.max(axis=0) - seen.min(axis=0) + 1
    rows.append((f"{n} x conv3", f"{side[0]}x{side[1]}", f"{n * 2 + 1}x{n * 2 + 1}"))
    assert side[0] == side[1] == 2 * n + 1
print(common.table(rows, ("stack", "receptive field (measured)", "n (k - 1) + 1")))

# %% [markdown]
# ## 2. Weights: 27 C^2 against 49 C^2
#
# Counted from the layers themselves (no biases), for the channel widths of VGG's stacks:

# %%
rows = []
for C in (64, 128, 256, 512):
    three = sum(nn.Conv2d(C, C, 3, bias=False).num_parameters() for _ in range(3))
    seven = nn.Conv2d(C, C, 7, bias=False).num_parameters()
    assert (three, seven) == (27 * C * C, 49 * C * C)
    rows.append((C, three, seven, f"{seven / three:.2f}"))
print(common.table(rows, ("C", "three 3x3 convs", "one 7x7 conv", "ratio")))

# %% [markdown]
# ## 3. Table 2: parameters of configurations A to E
#
# Built at full size (the weights are not drawn, so this costs no time) and counted:

# %%
paper_millions = {"A": 133, "A-LRN": 133, "B": 133, "C": 134, "D": 138, "E": 144}
counts = {}
for config, millions in paper_millions.items():
    net = models.vgg(config, init=None)
    counts[config] = net.num_parameters()
    del net
depth = {c: models.VGG_CONFIGS[c].count("conv") + 3 for c in counts}
print(common.table([(c, depth[c], counts[c], f"{counts[c] / 1e6:.1f} M", f"{paper_millions[c]} M") for c in counts],
                   ("config", "weight layers", "parameters", "millions", "paper (Table 2)")))
fc = models.vgg("A", init=None).classifier.num_parameters()
print(f"the three FC layers alone hold {fc:,} of them ({fc / counts['A']:.0%} of A): depth costs few parameters")

# %% [markdown]
# ## 4. Depth on small data
#
# `models.vgg_cifar` (five 2x2 poolings take 32x32 to 1x1; He initialisation, so even the deeper nets
# train from scratch: the paper had to start B to E from a trained A, `models.vgg.init_from_a`).
# Configurations A (11 layers), B (13) and D (16), from the same seed on the same batches, with
# dropout switched off: on a thousand images, with hidden layers of 128 units (512 x width), dropout
# held every configuration at chance level for the first several hundred steps, longer than a
# few-minute run (lesson 08 is about dropout; this experiment is about depth).

# %%
n_train, n_test = lesson.pick(quick=(64, 64), default=(1000, 1000))
epochs = lesson.pick(quick=1, default=10, data=8)
batch_size = lesson.pick(quick=32, default=32, data=128)  # small sets: more, smaller steps
width = lesson.pick(quick=0.0625, default=0.25, data=0.25)
train_set, test_set = lesson.datasets(n_train, n_test)
history, nets = {}, {}
for config in ("A", "B", "D"):
    ta.manual_seed(lesson.args.seed)
    nets[config] = common.set_dropout(models.vgg_cifar(config, width=width), 0.0)
    history[config] = lesson.train(nets[config], train_set, test_set, epochs, 0.01, f"vgg_{config}", batch_size)
print(common.table([(c, depth[c], nets[c].num_parameters(), f"{h[-1]['train_top1_error']:.1%}",
                     f"{h[-1]['val_top1_error']:.1%}", f"{min(r['val_top1_error'] for r in h):.1%}")
                    for c, h in history.items()],
                   ("config", "weight layers", "parameters", "train error", "final test error", "best test error")))

# %% [markdown]
# ## 5. Dense evaluation at several scales, after training with scale jittering
#
# The trained D turned fully convolutional: on 32x32 images (the training size) its score map is 1x1
# and it must give exactly the scores of the original net.
#
# Multi-scale testing pays off for nets trained with *scale jittering* (VGG section 3.1: S drawn
# from [256, 512] for every image, then a 224 crop; Table 4: D 25.6% -> 24.8% top-1 from one test
# scale to three), which have seen objects at all those sizes. The same at CIFAR's scale: a second D,
# from the same seed, trained on images rescaled so their side is S ~ U[32, 64] (`ScaleJitter(32,
# 64)`), then a random 32x32 crop, the ratios of VGG's 224 of [256, 512]. Both are then tested
# densely on the test images rescaled to Q = 32, 48, 64 (VGG's Q = {Smin, (Smin + Smax)/2, Smax} =
# {256, 384, 512}): score maps of 1x1, 1x1 and 2x2, averaged over their positions; then the
# posteriors of the three scales averaged. Rescaled images of other sizes have no per-pixel mean
# image: the jittered net trains and tests on images minus the mean colour (VGG section 2.1), and
# the fixed-scale one is tested so too.

# %%
net = nets["D"].eval()
dense = net.to_fully_convolutional()
plain = lesson.loader(test_set, train_set)
images, _ = next(iter(plain))
with ta.no_grad():
    gap = np.abs(net(images).numpy() - dense(images).numpy()).max()
print(f"32x32 test images: max |net - dense net| = {gap:.1e}")
assert gap < 1e-4
ta.manual_seed(lesson.args.seed)
nets["D jittered"] = common.set_dropout(models.vgg_cifar("D", width=width), 0.0)
jitter = T.Compose([T.ScaleJitter(32, 64), T.RandomCrop(32)])
lesson.train(nets["D jittered"], train_set, test_set, epochs, 0.01, "vgg_D_jittered", batch_size,
                                transform=jitter, mean="colour")
colour = data.pipeline.preprocess(train_set.images_labels()[0], mean="colour")  # as the jittered D trained
scales, errors = (32, 48, 64), {}
for name in ("D", "D jittered"):
    dense, posteriors = nets[name].eval().to_fully_convolutional(), {}
    for q in scales:
        rescale = T.Compose([lambda image, rng, q=q: T.resize_shorter(image, q), colour, T.ToFloat()])
        loader = data.DataLoader(test_set, 250, device=lesson.device, transform=rescale)
        posteriors[q], labels = common.predict(dense, loader)
    errors[name] = {f"Q = {q}": float((posteriors[q].argmax(1) != labels).mean()) for q in scales}
    errors[name]["Q = 32, 48, 64 averaged"] = float((sum(posteriors.values()).argmax(1) != labels).mean())
print(common.table([(q, *(f"{errors[n][q]:.1%}" for n in errors)) for q in errors["D"]],
                   ("test scales", "top-1 error, D trained at S = 32", "D trained with S in [32, 64]")))
change = {n: 100 * (e["Q = 32, 48, 64 averaged"] - e["Q = 32"]) for n, e in errors.items()}
print(f"three scales averaged instead of Q = 32 alone: top-1 error {change['D']:+.1f} points for D trained at "
      f"S = 32, {change['D jittered']:+.1f} for the jittered D (VGG Table 4, jittered D: 25.6% -> 24.8%, -0.8)")
# `12_results.json` keys: `trained` (every run's curves, lessons/common.py), `parameters` ({config: count
# at this width}) and `multi_scale` ({"errors": {net: {test scales: top-1 error}}, "change_points": {net:
# the three scales' averaged error minus Q = 32's, in points: negative where multi-scale helps}}).
lesson.record(parameters={c: nets[c].num_parameters() for c in history}, multi_scale={"errors": errors, "change_points": change})

# %% [markdown]
# Read this against the paper: a net trained at one scale has never seen its objects 1.5 or 2 times
# larger, so for it Q = 48 and 64, and their average, may well do worse than Q = 32 alone (the paper
# tests such nets only at Q = {S - 32, S, S + 32}); the jittered net has seen every scale from 32 to 64.
#
# The figure: left, parameters of A-E (Table 2); middle, test error of A, B, D while training; right,
# both Ds' errors at each test scale and averaged over the scales.

# %%
fig, (left, middle, right) = common.plt.subplots(1, 3, figsize=(16, 4.5))
bars = left.bar(list(counts), [v / 1e6 for v in counts.values()], color="tab:grey")
left.bar_label(bars, fmt="%.1f", fontsize=8)
left.set(ylabel="parameters (millions)", ylim=(120, 150), title="VGG A-E at 224x224 (Table 2)")
lesson.plot_errors(middle, {f"{c} ({depth[c]} layers)": h for c, h in history.items()}, "VGG-CIFAR", train_set)
pos = np.arange(len(errors["D"]))
for k, (name, label) in enumerate((("D", "D, S = 32"), ("D jittered", "D, S in [32, 64]"))):
    bars = right.bar(pos + (k - 0.5) * 0.4, [100 * e for e in errors[name].values()], 0.4, label=label)
    right.bar_label(bars, fmt="%.1f", fontsize=8)
right.set_xticks(pos, ["Q=32", "Q=48", "Q=64", "averaged"])
right.set(ylabel="test top-1 error (%)", ylim=(0, 118), title="dense D: single scales vs multi-scale")
right.legend(loc="upper center", ncol=2, fontsize=8)
lesson.save(fig, "vgg")

# %% [markdown]
# ## Exercises
#
# In `lessons/exercises/08_vgg.py` you write `receptive_field` and `vgg_parameter_count`, to rebuild Tables
# 1 and 2, from stubs that state the task and the shapes. Copy the file, fill it in, and
# `tinyalex grade 08_vgg.py` checks your answers against the engine.

# %%
lesson.done()
