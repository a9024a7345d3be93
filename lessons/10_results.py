# %% [markdown]
# # Lesson 10: results and qualitative evaluation (paper sections 6 and 6.1, Figures 3 and 4)
#
# **The claims.**
#
# - **Numbers** (section 6): on ILSVRC-2010 the network reaches top-1 and top-5 test error rates of
#   **37.5% and 17.0%**, against 47.1% / 28.2% and 45.7% / 25.7% for the best earlier methods. On
#   ILSVRC-2012 one CNN gets 18.2% top-5 error on the validation set, an average of five CNNs 16.4%,
#   and seven CNNs (two pre-trained on all of ImageNet Fall 2011) 15.3% on the test set, against
#   26.2% for the second-best entry.
# - **Figure 3**: the 96 first-layer kernels are frequency- and orientation-selective, plus coloured
#   blobs; the 48 kernels of column 1 are largely colour-agnostic, those of column 2 largely
#   colour-specific, whatever the random initialisation.
# - **Figure 4, left**: the top-5 predictions are mostly sensible, even when off-centre objects are
#   recognised or the top-1 label is wrong.
# - **Figure 4, right**: training images whose last-hidden-layer (4096-d) feature vectors are close in
#   Euclidean distance to a test image's are of the same kind of object, though not close in pixels.
#
# **The equation.** Top-k error is the fraction of test images whose true label y_n is not among
# the k labels with the highest predicted probability:
#
#     top-k error = (1/N) sum_n [ rank of y_n in p_n >= k ]
#
# **The code.** `tinyalex.metrics.topk_correct` (ranks on the device, ties broken by class index),
# used by `tinyalex.train.evaluate`; the figures are `tinyalex.viz.kernel_grid`, `prediction_bars` and
# `neighbours_grid`.

# %%
import numpy as np

import common
import tinyalex as ta
from tinyalex import checkpoint, data, models, viz
from tinyalex.metrics import topk_correct

lesson = common.Lesson("10", "results and qualitative evaluation", "section 6, Figures 3 and 4",
                       runs={"quick": ("a tiny network (128 images, 1 epoch) and the figures", "10 s"),
                             "default": ("lesson 09's AlexNet-CIFAR if it was run (else trained here, 2,000 "
                                         "synthetic images, 6 epochs), its errors and the figures", "1 min (8 more without lesson 09)"),
                             "data": ("lesson 09's network on CIFAR-10 (trained here if absent)",
                                      "minutes with lesson 09's network")})

# %% [markdown]
# ## 1. The network
#
# The network of lesson 09 (AlexNet-CIFAR, one-column form), read from its best checkpoint when that
# lesson has been run with the same options; otherwise it is trained here in the same way.

# %%
width = lesson.pick(quick=0.0625, default=0.125, data=1.0)
n_train, n_test = lesson.pick(quick=(128, 128), default=(2000, 1000))
train_set, test_set = lesson.datasets(n_train, n_test)
model = models.alexnet_cifar(columns=1, width=width).to(lesson.device)
saved = lesson.out / "09_alexnet" / "best.npz"
try:
    checkpoint.load(saved).restore(model)
    print(f"read lesson 09's network from {saved}")
except (FileNotFoundError, checkpoint.CheckpointError) as e:
    print(f"lesson 09's network is not usable here ({e}); training one")
    augment = data.transforms.Compose([data.transforms.RandomCrop(32, padding=4), data.transforms.RandomFlip(),
                                       data.transforms.ToFloat()])
    lesson.train(model, train_set, test_set, lesson.pick(quick=1, default=30, data=40), 0.01, "alexnet",
                 lesson.pick(quick=32, default=32, data=128), transform=augment)
model.eval()
classes = getattr(test_set, "classes", [str(c) for c in range(10)])

# %% [markdown]
# ## 2. Top-1 and top-5 error
#
# The softmax outputs of every test image, then the error for each k: top-1 and top-5 are two points
# of one curve that falls to 0 at k = 10 classes (with 1000 classes the paper's top-5 is a far
# stricter test than here, where a guess has a 50% chance).

# %%
probs, labels = common.predict(model, lesson.loader(test_set, train_set))
ks = tuple(range(1, len(classes) + 1))
errors = [1 - int(c) / len(labels) for c in topk_correct(probs, labels, ks)]
print(f"{len(labels):,} test images: top-1 error {errors[0]:.1%}, top-5 error {errors[4]:.1%} "
      f"(chance: {1 - 1 / len(classes):.0%} and {1 - 5 / len(classes):.0%}; paper, ILSVRC-2010 with 1000 "
      "classes: 37.5% and 17.0%)")

# %% [markdown]
# ## 3. Figure 3: the first-layer kernels
#
# conv1's kernels as colour images, each stretched to its own range. In the one-column form the first
# half are the kernels of column 1 and the second half those of column 2 (lesson 03). How colourful a
# kernel is: the share of its energy that is *not* in its grey part (the mean over R, G, B at each
# tap): 0 for a grey kernel, higher for a colour-opponent one. The paper saw column 1 grey and column 2
# colourful.

# %%
w = model.conv1.weight.numpy()
grey = w.mean(axis=1, keepdims=True)
colour_share = ((w - grey) ** 2).sum(axis=(1, 2, 3)) / (w ** 2).sum(axis=(1, 2, 3))
half = len(w) // 2
print(f"{len(w)} kernels {w.shape[1:]}: colour share column 1 {colour_share[:half].mean():.2f}, "
      f"column 2 {colour_share[half:].mean():.2f} (random kernels: {2 / 3:.2f})")
per_row = half if half <= 16 else 16  # rows of one column only: column 1 above, column 2 below
path = viz.kernel_grid(w, lesson.out / "10_kernels.png", per_row=per_row, title=f"conv1, {len(w)} kernels")
lesson.show(path, f" (the first {half // per_row} row(s): column 1, then column 2)")

# %% [markdown]
# ## 4. Figure 4, left: the five most probable labels
#
# Eight test images, each with its top-5 labels; the true label's bar is red.

# %%
shown = np.arange(8)
views = np.stack([test_set[int(i)][0] for i in shown])
path = viz.prediction_bars(views, probs[shown], classes, lesson.out / "10_predictions.png", labels=labels[shown])
lesson.show(path)
for i in shown:
    top = np.argsort(-probs[i], kind="stable")[:5]
    print(f"  true {classes[labels[i]]:>9}: " + ", ".join(f"{classes[j]} {probs[i, j]:.2f}" for j in top))

# %% [markdown]
# ## 5. Figure 4, right: nearest neighbours in the last hidden layer
#
# The output of relu7 (the last hidden layer: 4096 values in the paper, 1024 x width here) for every
# training image, and for a few test images the training images at the smallest Euclidean distance.
# Against them, the neighbours by distance between the raw pixels. How often a neighbour has the
# query's class measures what the figure shows.

# %%
def features_and_pixels(dataset, limit):
    """relu7 outputs and flattened pixels of the first ``limit`` images of ``dataset``, with labels."""
    feats, pixels, ys = [], [], []
    with ta.no_grad():
        for images, y in lesson.loader(dataset, train_set):
            feats.append(common.run_layers(model, images, stop="relu7").numpy())
            pixels.append(images.numpy().reshape(len(images), -1))
            ys.append(y.numpy())
            if sum(map(len, ys)) >= limit:
                break
    return np.concatenate(feats)[:limit], np.concatenate(pixels)[:limit], np.concatenate(ys)[:limit]


def nearest(queries, keys, m):
    """Indices of the ``m`` rows of ``keys`` closest to each query (squared Euclidean distance)."""
    d = (queries ** 2).sum(1)[:, None] - 2 * queries @ keys.T + (keys ** 2).sum(1)[None, :]
    return np.argsort(d, axis=1, kind="stable")[:, :m]


train_feats, train_pixels, train_labels = features_and_pixels(train_set, lesson.pick(quick=128, default=10_000))
test_feats, test_pixels, test_labels = features_and_pixels(test_set, 500)
m = 6
same = {}
for space, keys, queries in (("relu7 features", train_feats, test_feats), ("pixels", train_pixels, test_pixels)):
    found = nearest(queries, keys, m)
    same[space] = (train_labels[found] == test_labels[:, None]).mean()
    if space == "relu7 features":
        neighbours = found
print(f"{len(test_feats)} test queries, {m} neighbours each among {len(train_feats):,} training images: "
      + ", ".join(f"by {s} {v:.0%} share the query's class" for s, v in same.items())
      + f" (chance {1 / len(classes):.0%})")
queries = np.stack([test_set[i][0] for i in range(5)])
grid = np.stack([[train_set[int(j)][0] for j in neighbours[i]] for i in range(5)])
path = viz.neighbours_grid(queries, grid, lesson.out / "10_neighbours.png")
lesson.show(path)

# %% [markdown]
# A last figure: the top-k error curve, and the colour share of each first-layer kernel by column.

# %%
fig, (left, right) = common.plt.subplots(1, 2, figsize=(11, 4))
left.plot(ks, [100 * e for e in errors], "-o", label="this network")
left.plot(ks, [100 * (1 - k / len(classes)) for k in ks], "--", color="grey", label="chance")
left.set(xlabel="k", ylabel="top-k test error (%)", title="top-k error (top-1 and top-5 are two points)")
left.legend()
right.bar(np.arange(half), colour_share[:half], label="column 1")
right.bar(np.arange(half, len(w)), colour_share[half:], label="column 2")
right.set(xlabel="conv1 kernel", ylabel="colour share of energy", ylim=(0, 1),
          title="how colourful each first-layer kernel is")
right.legend()
lesson.save(fig, "errors")
lesson.done()
