# %% [markdown]
# # Lesson 11: LRN vs batch normalisation (a modern comparison; AlexNet section 3.3, VGG section 4.1)
#
# **The question learners ask.** AlexNet normalises with LRN (lesson 04); three years later batch
# normalisation (Ioffe & Szegedy 2015) replaced it almost everywhere, and VGG had already found that
# LRN "does not improve the performance" of its configuration A (A-LRN: 29.7% vs A: 29.6% top-1,
# VGG Table 3). What does each one normalise, and what does each do to training?
#
# **The equations.** For activities a of shape (N, C, H, W):
#
#     LRN (AlexNet 3.3): across neighbouring channels, one image and one pixel at a time
#         b_{n,c,y,x} = a_{n,c,y,x} / (k + alpha sum_{c' near c} a_{n,c',y,x}^2)^beta
#     BN (Ioffe & Szegedy): per channel, across the batch and all pixels
#         y_{n,c,y,x} = gamma_c (a_{n,c,y,x} - mean_c) / sqrt(var_c + eps) + beta_c
#
# LRN has no learned parameters and does the same for one image at test time as in training. BN's
# mean_c and var_c are those of the *batch* while training (an image's output depends on its batch
# mates) and running averages at test time; gamma and beta are learned, so the network may undo the
# normalisation where it does not help.
#
# **The code.** `F.lrn` and `F.batch_norm` in tinyalex/functional/normalization.py; the layers
# `nn.LRN` and `nn.BatchNorm2d`; `models.alexnet_cifar(norm="lrn" | "batchnorm" | None)` puts BN after
# every conv, before its ReLU (the conv then has no bias: beta takes its place).

# %%
import numpy as np

import common
import tinyalex as ta
from tinyalex import functional as F, models

lesson = common.Lesson("11", "LRN vs batch normalisation", "AlexNet section 3.3, VGG section 4.1",
                       runs={"quick": ("the statistics and a tiny comparison (64 images, 1 epoch each)", "15 s"),
                             "default": ("the statistics and AlexNet-CIFAR (1/8 width) with LRN, batch norm or "
                                         "neither, 2,000 synthetic images, 10 epochs each", "8 min"),
                             "data": ("the comparison on CIFAR-10 at 1/4 width, LRN and batch norm, 10 epochs each "
                                      "(full width: 10 min an epoch on a 2-core CPU)",
                                      "45-60 min on a 2-core CPU beside another run (measured: 46 and 59 min), minutes on a GPU")})

# %% [markdown]
# ## 1. What each one equalises
#
# Eight random "activity maps" of six channels whose scales differ a thousandfold (channel c has
# std 0.1 x 4^c, after a ReLU). The per-channel spread before and after each normalisation:

# %%
rng = np.random.default_rng(lesson.args.seed)
scales = 0.1 * 4.0 ** np.arange(6)
a = np.maximum(rng.standard_normal((8, 6, 5, 5)) * scales[None, :, None, None], 0)
x = ta.tensor(a, dtype="float64")
ones, zeros = ta.tensor(np.ones(6), dtype="float64"), ta.tensor(np.zeros(6), dtype="float64")
after = {"input": a, "LRN (paper)": F.lrn(x).numpy(), "batch norm": F.batch_norm(x, ones, zeros).numpy()}
spread = {name: v.std(axis=(0, 2, 3)) for name, v in after.items()}
print(common.table([(f"channel {c}", *(f"{s[c]:.3g}" for s in spread.values())) for c in range(6)],
                   ("", *(f"std, {n}" for n in spread))))

# %% [markdown]
# LRN leaves the small channels as they are (divided by k^beta = 2^0.75) and only holds back the
# units that sit next to big activities, while batch norm gives every channel unit spread. And batch
# norm's output for one image depends on the rest of its batch while training, not at test time:

# %%
bn = models.alexnet_cifar(columns=1, width=lesson.pick(quick=0.0625, default=0.125, data=0.25), norm="batchnorm")
images = rng.random((7, 3, 32, 32), np.float32)
batch_a, batch_b = ta.tensor(images[:4]), ta.tensor(np.concatenate([images[:1], 5 * images[4:]]))  # image 0 in both
with ta.no_grad():
    for mode in ("train", "eval"):
        getattr(bn, mode)()
        first = [common.run_layers(bn, b, stop="bn1").numpy()[0] for b in (batch_a, batch_b)]
        print(f"{mode} mode: the same image in two different batches, bn1 outputs differ by up to "
              f"{np.abs(first[0] - first[1]).max():.3g}")

# %% [markdown]
# ## 2. Training with each
#
# AlexNet-CIFAR from the same seed three times: with the paper's LRN after conv1 and conv2, with
# batch norm after every conv, and with no normalisation (not in the `--data` run, for time); same
# data, same batches, learning rate 0.01.

# %%
n_train, n_test = lesson.pick(quick=(64, 64), default=(2000, 1000))
epochs = lesson.pick(quick=1, default=10, data=10)
batch_size = lesson.pick(quick=32, default=32, data=128)  # small sets: more, smaller steps
width = lesson.pick(quick=0.0625, default=0.125, data=0.25)
train_set, test_set = lesson.datasets(n_train, n_test)
history = {}
for norm in lesson.pick(quick=("lrn", "batchnorm", None), default=("lrn", "batchnorm", None), data=("lrn", "batchnorm")):
    name = norm or "none"
    ta.manual_seed(lesson.args.seed)
    history[name] = lesson.train(models.alexnet_cifar(columns=1, width=width, norm=norm), train_set, test_set,
                                 epochs, 0.01, name, batch_size)
# `11_results.json` keys: `trained` (each run's curves, lessons/common.py) and `final` ({normalisation:
# last epoch's `train_error`, `test_error`, best `best_test_error`})
lesson.record(final={name: {"train_error": h[-1]["train_top1_error"], "test_error": h[-1]["val_top1_error"],
                            "best_test_error": min(r["val_top1_error"] for r in h)} for name, h in history.items()})
print(common.table([(name, f"{h[-1]['train_top1_error']:.1%}", f"{h[-1]['val_top1_error']:.1%}",
                     f"{min(r['val_top1_error'] for r in h):.1%}", f"{np.mean([r['images_per_s'] for r in h]):.0f}")
                    for name, h in history.items()],
                   ("normalisation", "train error", "final test error", "best test error", "images/s")))

# %% [markdown]
# The figure: left, the per-channel spread of section 1; right, the test error while training.

# %%
fig, (left, right) = common.plt.subplots(1, 2, figsize=(12, 4.5))
pos = np.arange(6)
for k, (name, s) in enumerate(spread.items()):
    left.bar(pos + (k - 1) * 0.27, s, 0.27, label=name)
left.set_yscale("log")
left.set_xticks(pos, [f"ch {c}" for c in pos])
left.set(ylabel="std over batch and pixels (log)", title="what each normalisation equalises")
left.legend()
lesson.plot_errors(right, history, "AlexNet-CIFAR", train_set)
lesson.save(fig, "lrn_vs_batchnorm")
lesson.done()
