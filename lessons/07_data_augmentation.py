# %% [markdown]
# # Lesson 07: data augmentation (paper section 4.1)
#
# **The claim.** Sixty million parameters overfit 1.2 million images. The paper enlarges the data set
# with two *label-preserving* transformations, computed on the CPU while the GPU trains, so they are
# "computationally free":
#
# 1. **Translations and reflections.** Train on random 224x224 patches of the 256x256 images and on
#    their horizontal mirror images: 32 x 32 positions x 2 = a factor of 2048 more (highly
#    interdependent) training images. Without it the network "suffers from substantial overfitting".
#    At test time the network averages its softmax over **ten patches**: the four corners, the centre,
#    and their mirrors.
# 2. **Colour (PCA) augmentation.** Object identity does not change with the intensity and colour of
#    the illumination, so each training image gets a random shift of all its pixels along the
#    principal components of the RGB values of the training set. This cut the top-1 error by over 1%.
#
# **The equations.** Each RGB pixel I_xy = [R, G, B] of one image gets the same shift
#
#     I_xy += [p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T,     a_i ~ N(0, 0.1), drawn once per image per epoch
#
# where p_i, l_i are the eigenvectors and eigenvalues of the 3x3 covariance of all training pixels.
#
# **The code.** In tinyalex/data/transforms.py: `RandomCrop` and `RandomFlip` (both one fancy-index
# gather for a whole batch, `crop_flip`), `PCALighting` (`.fit` does the eigen-decomposition, `.batch`
# the shift above), and `ten_crop`, which `tinyalex.train.evaluate(..., ten_crop=size)` uses to average
# the softmax over the ten views. Here a 32x32 image plays the 256x256 one and 28x28 patches the
# 224x224 ones: 28/32 = 224/256.

# %%
import numpy as np

import common
import tinyalex as ta
from tinyalex import models
from tinyalex.data import transforms as T
from tinyalex.train import evaluate

lesson = common.Lesson("07", "data augmentation", "section 4.1",
                       runs={"quick": ("the pictures and a tiny ablation (128 images, 1 epoch)", "10 s"),
                             "default": ("the pictures and AlexNet-CIFAR (1/8 width) with and without "
                                         "augmentation, 2,000 synthetic images, 15 epochs each", "8 min"),
                             "data": ("the ablation on CIFAR-10 at 1/4 width, 12 epochs each (full width: 10 min an "
                                      "epoch on a 2-core CPU)", "55-65 min on a 2-core CPU beside another run (measured: 55, 57 and 65 min), minutes on a GPU")})
CROP = 28
n_train, n_test = lesson.pick(quick=(128, 128), default=(2000, 1000))
train_set, test_set = lesson.datasets(n_train, n_test)
rng = ta.backend.default_generator.for_device("cpu")

# %% [markdown]
# ## 1. Random patches and their reflections
#
# A 28x28 patch fits at (32 - 28 + 1)^2 = 25 positions of a 32x32 image, mirrored or not: 50 views
# of each training image (the paper counts 32 x 32 x 2 = 2048 for 224 of 256). Eight random views of
# one image, as the training loader draws them:

# %%
crop_flip = T.Compose([T.RandomCrop(CROP), T.RandomFlip()])
train_images = train_set.images_labels()[0]
image = train_images[0]
views = crop_flip.batch(np.repeat(image[None], 8, axis=0), rng)
print(f"one image {image.shape} -> {len(views)} random views {views.shape[1:]}; "
      f"distinct views: {(32 - CROP + 1) ** 2 * 2} here, 2048 in the paper")

# %% [markdown]
# ## 2. PCA colour augmentation
#
# `PCALighting.fit` takes the covariance of every RGB pixel of the training set (on the [0, 1] scale)
# and its eigen-decomposition. The first component is nearly (1, 1, 1)/sqrt(3) on natural photographs:
# brightness. The synthetic images draw colours uniformly, so their three eigenvalues are close.

# %%
lighting = T.PCALighting.fit(train_images)
imagenet = T.PCALighting.imagenet()
for name, pca in (("this training set", lighting), ("ImageNet (the usual values)", imagenet)):
    print(f"{name}: eigenvalues {np.round(pca.eigvals, 4)}, first eigenvector {np.round(pca.eigvecs[:, 0], 3)}")

# %% [markdown]
# The shift of one image, by hand from the equation, equals what `PCALighting` adds when it draws the
# same a_i from the same generator:

# %%
seed = [lesson.args.seed, 7]
alpha = np.random.default_rng(seed).normal(0, lighting.std, (1, 3)).astype(np.float32)
by_hand = image / np.float32(255) + lighting.eigvecs @ (alpha[0] * lighting.eigvals)
by_transform = lighting.batch(image[None], np.random.default_rng(seed))[0]
print(f"a = {np.round(alpha[0], 4)}: shift of every pixel {np.round(by_transform[0, 0] - image[0, 0] / 255, 5)}, "
      f"max |by hand - PCALighting| = {np.abs(by_hand - by_transform).max():.1e}")
assert np.allclose(by_hand, by_transform, atol=1e-6)

# %% [markdown]
# With a standard deviation of 0.1 the shifts are small (a few grey levels): the figure shows a = -3
# to +3 standard deviations along each component, and a row ten times stronger to make the direction
# of each component visible.

# %%
steps = np.linspace(-0.3, 0.3, 7)
rows = [(f"p{i + 1} (l = {lighting.eigvals[i]:.3f})", factor, i) for factor in (1, 10) for i in range(3)]
fig, axes = common.plt.subplots(1 + len(rows), len(steps) + 1, figsize=(1.3 * (len(steps) + 1), 1.4 * (1 + len(rows))))
for ax in axes.ravel():
    ax.set_axis_off()
axes[0, 0].imshow(image)
axes[0, 0].set_title("image", fontsize=8)
for j, view in enumerate(views[:len(steps)]):
    axes[0, j + 1].imshow(view)
    axes[0, j + 1].set_title("crop + flip", fontsize=8)
for r, (label, factor, i) in enumerate(rows, start=1):
    axes[r, 0].text(0, 0.5, f"{label}\n{'x10 (exaggerated)' if factor > 1 else 'as in the paper'}", fontsize=7,
                    va="center")
    for j, a in enumerate(steps):
        shifted = image / 255 + factor * a * lighting.eigvals[i] * lighting.eigvecs[:, i]
        axes[r, j + 1].imshow(np.clip(shifted, 0, 1))
        axes[r, j + 1].set_title(f"a{i + 1} = {a:+.1f}", fontsize=7)
fig.suptitle("Section 4.1: random 28x28 patches with reflections (top), PCA colour augmentation (below)")
lesson.save(fig, "augmentations")

# %% [markdown]
# ## 3. The ablation, and ten-crop testing
#
# AlexNet-CIFAR (`models.alexnet_cifar`, here in its one-column grouped form, which computes the same
# function as the two columns; lesson 03) trained twice from the same seed:
#
# - **plain**: the central 28x28 patch of every image, every epoch the same;
# - **augmented**: random 28x28 patches, reflections, PCA colour shifts.
#
# Both are tested on the central patch (during training) and then with the paper's ten patches.

# %%
width = lesson.pick(quick=0.0625, default=0.125, data=0.25)
epochs = lesson.pick(quick=1, default=15, data=12)
batch_size = lesson.pick(quick=32, default=32, data=128)  # small sets: more, smaller steps
pipelines = {"plain": T.Compose([T.CenterCrop(CROP), T.ToFloat()]),
             "augmented": T.Compose([T.RandomCrop(CROP), T.RandomFlip(), lighting, T.ToFloat()])}
centre = T.Compose([T.CenterCrop(CROP), T.ToFloat()])
history, results = {}, {}
for name, pipeline in pipelines.items():
    ta.manual_seed(lesson.args.seed)
    model = models.alexnet_cifar(columns=1, width=width)
    history[name] = lesson.train(model, train_set, test_set, epochs, 0.01, name, transform=pipeline,
                                 test_transform=centre, batch_size=batch_size)
    results[name] = {"centre": history[name][-1]["val_top1_error"],
                     "ten": evaluate(model, lesson.loader(test_set, train_set), ten_crop=CROP)["top1"],
                     "train": history[name][-1]["train_top1_error"]}
print(common.table([(name, f"{r['train']:.1%}", f"{r['centre']:.1%}", f"{r['ten']:.1%}",
                     f"{100 * (r['ten'] - r['centre']):+.1f}") for name, r in results.items()],
                   ("training", "train error", "test error, centre patch", "test error, ten patches",
                    "ten minus one patch (points)")))
gap = {name: r["centre"] - r["train"] for name, r in results.items()}
# `07_results.json` keys: `trained` (each run's curves, lessons/common.py) and `final` ({run: final
# `train` error, test error on the `centre` patch and with the `ten` patches, `gap` = centre - train})
lesson.record(final={name: {**r, "gap": gap[name]} for name, r in results.items()})
print(f"test - train error (overfitting): plain {100 * gap['plain']:+.1f} points, "
      f"augmented {100 * gap['augmented']:+.1f} points")

# %% [markdown]
# The figure: the test error while training (centre patch), and the final errors with one and with
# ten test patches.

# %%
fig, (left, right) = common.plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
lesson.plot_errors(left, history, "AlexNet-CIFAR, centre patch", train_set, train=True)
pos = np.arange(len(results))
for k, (key, label) in enumerate((("centre", "centre patch"), ("ten", "ten patches, softmax averaged"))):
    bars = right.bar(pos + (k - 0.5) * 0.4, [100 * r[key] for r in results.values()], 0.4, label=label)
    right.bar_label(bars, fmt="%.1f", fontsize=8)
right.set_xticks(pos, list(results))
right.set(ylabel="final test top-1 error (%)", ylim=(0, 118), title="testing on one patch vs ten")
right.legend(loc="upper center", ncol=2, fontsize=8)
lesson.save(fig, "ablation")
lesson.done()
