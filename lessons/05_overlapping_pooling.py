# %% [markdown]
# # Lesson 05: overlapping pooling (paper section 3.4)
#
# **The claim.** A pooling layer is a grid of units spaced s pixels apart, each summarising a z x z
# neighbourhood. With s = z (the traditional choice) neighbouring windows do not overlap; AlexNet uses
# s = 2, z = 3, so they do. This cut the top-1/top-5 error by 0.4%/0.3% against s = 2, z = 2, which
# gives output of the same size, and the paper observes that networks with overlapping pooling are
# "slightly more difficult to overfit".
#
# **The equation.** Each output is the maximum of its window; its size along each axis is
#
#     out = floor((size + 2 p - z) / s) + 1
#
# computed in one place for every layer: `F.conv_outsize` (tinyalex/functional/im2col.py). Backward sends
# each output's gradient to the input that was the maximum (the first one, in row-major order, when
# several tie); with overlapping windows one input can be the maximum of several windows and then
# receives the sum of their gradients.
#
# **The code.** `F.max_pool2d` in tinyalex/functional/pooling.py: a running maximum over the z*z
# strided slices of the input, keeping the argmax; backward adds `gy * (argmax == offset)` into the same
# slices. `max_pool2d_reference` in tinyalex/functional/reference.py is the loop over output pixels.

# %%
import numpy as np

import common
import tinyalex as ta
from tinyalex import functional as F
from tinyalex.functional.reference import max_pool2d_reference

lesson = common.Lesson("05", "overlapping pooling", "section 3.4",
                       runs={"quick": ("the 4x4 and 5x5 examples and a tiny ablation (128 images, 2 epochs)", "10 s"),
                             "default": ("the examples and the four-layer CNN with 3x3/2 vs 2x2/2 pooling, "
                                         "2,000 synthetic images, 10 epochs each", "3 min on an idle CPU"),
                             "data": ("the ablation on CIFAR-10: a sweep of 3 rates over 1 epoch per network, then "
                                      "each network from 3 seeds for 6 epochs", "85 min on a 2-core CPU beside another run (measured: the sweep and 2 seeds, 67 min), minutes on a GPU")})

# %% [markdown]
# ## 1. The 4x4 example
#
# The same 4x4 map, pooled 2x2 at stride 2 and 3x3 at stride 2:

# %%
x4 = np.array([[1, 3, 2, 0],
               [5, 6, 1, 2],
               [0, 2, 9, 4],
               [3, 1, 7, 8]], dtype=np.float64)
for z in (2, 3):
    out = F.max_pool2d(ta.tensor(x4.reshape(1, 1, 4, 4)), z, 2).numpy()[0, 0]
    print(f"{z}x{z} stride 2: output {F.conv_outsize(4, z, 2, 0)}x{F.conv_outsize(4, z, 2, 0)} "
          f"(floor((4 - {z}) / 2) + 1)\n{out}")
    assert np.array_equal(out, max_pool2d_reference(x4.reshape(1, 1, 4, 4), z, 2, 0)[0, 0])

# %% [markdown]
# On a map this small the 3x3 windows at stride 2 fit only once: overlap changes the output size
# unless the map size suits both. On a 5x5 map both give 2x2, and the 3x3 windows share the middle
# row and column. Backward with a gradient of 1 at every output counts how many windows chose each
# input as their maximum:

# %%
x5 = np.array([[0, 1, 2, 1, 0],
               [1, 3, 4, 2, 1],
               [2, 4, 9, 5, 2],
               [1, 2, 5, 3, 1],
               [0, 1, 2, 1, 0]], dtype=np.float64) + np.arange(25).reshape(5, 5) * 1e-3  # no ties
routed = {}
for z in (2, 3):
    t = ta.tensor(x5.reshape(1, 1, 5, 5), requires_grad=True)
    y = F.max_pool2d(t, z, 2)
    y.backward(np.ones(y.shape))
    routed[z] = t.grad[0, 0]
    print(f"{z}x{z}/2: output {y.shape[2]}x{y.shape[3]}; gradient reaching each input:\n{routed[z]}")

# %% [markdown]
# ## 2. Output sizes in AlexNet
#
# In the paper's network the two choices give the same sizes, 55 -> 27, 27 -> 13, 13 -> 6, which makes
# the comparison fair: only the overlap differs.

# %%
rows = [(name, size, F.conv_outsize(size, 2, 2, 0), F.conv_outsize(size, 3, 2, 0))
        for name, size in (("after conv1", 55), ("after conv2", 27), ("after conv5", 13), ("CIFAR 32x32", 32))]
print(common.table(rows, ("pooling", "input", "2x2/2 output", "3x3/2 output")))

# %% [markdown]
# ## 3. The ablation
#
# The four-layer CNN of lesson 02 (`common.four_layer_cnn`, ReLU), once with 3x3/2 and once with 2x2/2
# max pooling after each conv layer (on 32x32 inputs the maps differ by one pixel: 15/7/3 against 16/8/4).
# Set up as lesson 04's ablation, as the paper's code trained its CIFAR-10 networks: [0, 255] pixels
# minus the mean image, cuda-convnet's initialisation, momentum 0.9, weight decay 5e-4, each network
# at the best rate of a one-epoch sweep (or the rate the CIFAR-10 sweep chose, where no rate gets clearly
# below chance), then the same epochs from several seeds (the same initial weights and batches for both
# networks of a seed). We watch the test error and the gap between
# training and test error (the paper's "more difficult to overfit").
#
# `05_results.json` keys: `settings`; those of `Lesson.ablation` (lessons/common.py: `sweep`, `lr`,
# `runs`, `summary`) for `pool_3x3_s2` and `pool_2x2_s2`; `summary.overlap_minus_plain` (`common.paired`:
# the per-seed differences of the final test error and of the gap, mean and std).

# %%
n_train, n_test = lesson.pick(quick=(128, 64), default=(2000, 500))
epochs = lesson.pick(quick=2, default=10, data=6)
rates = lesson.pick(quick=(0.003,), default=(0.001, 0.003, 0.01), data=(0.001, 0.003, 0.01))
seeds = lesson.seeds(quick=1, default=1, data=3)
setup = {"pixels": "paper"}
fallback = {"pool_3x3_s2": 0.003, "pool_2x2_s2": 0.003}  # where a sweep stays at chance: the CIFAR-10 sweep's rates
train_set, test_set = lesson.datasets(n_train, n_test)
lesson.record(settings={"n_train": len(train_set), "n_test": len(test_set), "epochs": epochs, "batch_size": 128,
                        "momentum": 0.9, "weight_decay": 5e-4, "init": "cuda-convnet", "sweep_rates": rates,
                        "sweep_epochs": 1, "fallback_lr": fallback, "seeds": seeds, **setup})
variants = {"pool_3x3_s2": lambda: common.four_layer_cnn(pool=(3, 2), init="cuda-convnet"),
            "pool_2x2_s2": lambda: common.four_layer_cnn(pool=(2, 2), init="cuda-convnet")}
summary, runs, nets, history = lesson.ablation(variants, rates, seeds, epochs, train_set, test_set, fallback, **setup)
summary["overlap_minus_plain"] = common.paired(runs, "pool_3x3_s2", "pool_2x2_s2")
lesson.record(summary=summary)
print(f"overlapping pooling changes the final test error by "
      f"{common.shown(summary['overlap_minus_plain']['test_error'], points=True)} and the train-test gap by "
      f"{common.shown(summary['overlap_minus_plain']['gap'], points=True)} (paper, ImageNet, AlexNet: top-1 error "
      "-0.4 points, top-5 -0.3, and slightly harder to overfit)")

# %% [markdown]
# The figure: left, where the gradient goes in the 5x5 example (overlapping windows send several
# gradients to one input); right, the ablation's test and training error.

# %%
fig, axes = common.plt.subplots(1, 3, figsize=(15, 4.5), gridspec_kw={"width_ratios": [1, 1, 2]})
for ax, z in zip(axes, (2, 3)):
    im = ax.imshow(routed[z], cmap="viridis", vmin=0, vmax=routed[3].max())
    for (i, j), v in np.ndenumerate(x5):
        ax.text(j, i, f"{v:.0f}", ha="center", va="center", color="w" if routed[z][i, j] < 2 else "k", fontsize=9)
    for k, (i, j) in enumerate([(i, j) for i in (0, 2) for j in (0, 2)]):  # the four windows, offset to show each
        ax.add_patch(common.plt.Rectangle((j - 0.5 + 0.06 * k, i - 0.5 + 0.06 * k), z - 0.12, z - 0.12, fill=False,
                                          edgecolor=f"C{k + 1}", lw=2))
    ax.set(title=f"{z}x{z} windows, stride 2\n({'no overlap' if z == 2 else 'overlapping'})",
           xlabel="input column", ylabel="input row")
fig.colorbar(im, ax=axes[:2], shrink=0.8, label="gradient received (windows whose max it is)")
lesson.plot_errors(axes[2], {f"{k}, seed {seeds[-1]}": h for k, h in history.items()}, "four-layer CNN", train_set, train=True)
lesson.save(fig, "overlapping_pooling")

# %% [markdown]
# ## Exercises
#
# In `lessons/exercises/03_max_pool.py` you write `max_pool_forward` and `max_pool_backward` for overlapping
# 3x3 windows at stride 2, ties included, on NumPy arrays, from stubs that state the task and the shapes.
# Copy the file, fill it in, and `tinyalex grade 03_max_pool.py` checks your answers against the engine and
# finite differences.

# %%
lesson.done()
