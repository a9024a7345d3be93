# %% [markdown]
# # Lesson 08: dropout (paper section 4.2)
#
# **The claim.** Averaging the predictions of many models cuts test error, but each big network costs
# days to train. Dropout gets a similar effect at the cost of about two trainings: every hidden neuron
# of a layer outputs zero with probability 0.5, so each training case sees a different, thinned
# network, and all of them share the weights. A neuron cannot rely on the presence of particular
# other neurons, which reduces their complex **co-adaptations**: it must learn features that are
# useful together with many random subsets of the others. At test time all neurons are used and their
# outputs are multiplied by 0.5, "a reasonable approximation to taking the geometric mean of the
# predictive distributions produced by the exponentially-many dropout networks". AlexNet drops out in
# fc6 and fc7; without it the network "exhibits substantial overfitting", and dropout roughly doubles
# the number of iterations needed to converge.
#
# **The equations.** With m_i ~ Bernoulli(1 - p), p = 0.5 the probability of dropping:
#
#     paper:     training  y = m * x              test  y = (1 - p) x
#     inverted:  training  y = m * x / (1 - p)    test  y = x
#
# Both keep the test output equal to the *expected* training output: E[m * x] = (1 - p) x. The
# inverted form (PyTorch's, and tinyalex's default) scales while training, so a trained network runs
# at test time with no change at all.
#
# **The code.** `F.dropout(x, p, training, mode="inverted" | "paper", seed=None, mask=None)` in
# tinyalex/functional/dropout.py: one `Function` that multiplies by a fixed array (the scaled mask in
# training, the factor 1 - p at test time), so its backward is that same multiplication. The layer
# `nn.Dropout` calls it with the module's train/eval flag.

# %%
import numpy as np

import common
import tinyalex as ta
from tinyalex import functional as F, models

lesson = common.Lesson("08", "dropout", "section 4.2",
                       runs={"quick": ("the expectations, the two modes, and a tiny ablation (128 images, 1 epoch)",
                                       "10 s"),
                             "default": ("the expectations, the two modes, and AlexNet-CIFAR (1/8 width) with and "
                                         "without dropout, 1,000 synthetic images, 30 epochs each", "7 min"),
                             "data": ("the ablation on CIFAR-10 at 1/4 width, 10 epochs each (full width: 10 min an "
                                      "epoch on a 2-core CPU)", "50 min on a 2-core CPU, minutes on a GPU")})

# %% [markdown]
# ## 1. The same expectation, measured
#
# Five activities, each passed through dropout 100,000 times in training mode (one call on a
# 100,000 x 5 batch draws 500,000 independent masks). The mean of the training outputs matches the
# test-time output of the same mode, within the Monte-Carlo error (std of the mean: x/sqrt(4 * 100,000)
# for p = 0.5).

# %%
x = np.array([0.5, 1.0, 2.0, 3.0, 4.0])
draws = 100_000
batch = ta.tensor(np.tile(x, (draws, 1)), dtype="float64")
rows = []
for mode in ("paper", "inverted"):
    train_mean = F.dropout(batch, 0.5, training=True, mode=mode).numpy().mean(axis=0)
    test = F.dropout(ta.tensor(x, dtype="float64"), 0.5, training=False, mode=mode).numpy()
    z = np.abs(train_mean - test) / (x / np.sqrt(4 * draws) * (2 if mode == "inverted" else 1))
    rows.append((mode, np.round(train_mean, 4), np.round(test, 4), f"{z.max():.1f}"))
    assert z.max() < 5, "the training mean strays more than 5 standard errors from the test output"
print(common.table(rows, ("mode", "mean of training outputs", "test output", "largest gap in std errors")))

# %% [markdown]
# ## 2. The two modes are one network, with the next layer's weights scaled
#
# In training the inverted mode outputs 1/(1 - p) = 2 times what the paper's mode outputs for the
# same mask, and at test time it outputs x instead of x / 2. So a paper-mode network with weights W
# computes exactly what an inverted-mode network computes when the weights *reading* a dropout layer
# (fc7 and fc8) are multiplied by 1 - p. Two copies of AlexNet-CIFAR, checked at test time and, with
# the same masks (the same seed), in training:

# %%
width = lesson.pick(quick=0.0625, default=0.125, data=0.25)
paper_net = models.alexnet_cifar(columns=1, width=width, dropout_mode="paper")
inverted_net = models.alexnet_cifar(columns=1, width=width, dropout_mode="inverted")
state = paper_net.state_dict()
for name in ("fc7.weight", "fc8.weight"):
    state[name] = state[name] * 0.5
inverted_net.load_state_dict(state)
images = ta.tensor(ta.backend.default_generator.for_device("cpu").random((8, 3, 32, 32)), dtype="float32")
for training in (False, True):
    outputs = []
    for net in (paper_net, inverted_net):
        net.train(training)
        ta.manual_seed(123)
        outputs.append(net(images).numpy())
    gap = np.abs(outputs[0] - outputs[1]).max() / np.abs(outputs[0]).max()
    print(f"{'training' if training else 'test'}: max |paper - inverted (fc7, fc8 x 0.5)| / max |output| = {gap:.1e}")
    assert gap < 1e-5

# %% [markdown]
# ## 3. The ablation: AlexNet-CIFAR with and without dropout
#
# The same network from the same seed, once with p = 0.5 in fc6 and fc7 and once with p = 0. A small
# training set and many epochs, so that the network can overfit.

# %%
n_train, n_test = lesson.pick(quick=(128, 128), default=(1000, 1000))
epochs = lesson.pick(quick=1, default=30, data=10)
batch_size = lesson.pick(quick=32, default=32, data=128)  # small sets: more, smaller steps
train_set, test_set = lesson.datasets(n_train, n_test)
history, nets = {}, {}
for name, p in (("no_dropout", 0.0), ("dropout", 0.5)):
    ta.manual_seed(lesson.args.seed)
    nets[name] = common.set_dropout(models.alexnet_cifar(columns=1, width=width), p)
    history[name] = lesson.train(nets[name], train_set, test_set, epochs, 0.01, name, batch_size=batch_size)
final = {name: h[-1] for name, h in history.items()}
# `08_results.json` keys: `trained` (each run's curves, lessons/common.py), `final` ({run: last epoch's
# `train_error`, `test_error`, `gap` (test - train), `test_loss`}) and, below, `thinned` (x0.5 at test
# time against the average of sampled thinned networks)
lesson.record(final={name: {"train_error": r["train_top1_error"], "test_error": r["val_top1_error"],
                            "gap": r["val_top1_error"] - r["train_top1_error"], "test_loss": r["val_loss"]}
                     for name, r in final.items()})
print(common.table([(name, f"{r['train_top1_error']:.1%}", f"{r['val_top1_error']:.1%}",
                     f"{100 * (r['val_top1_error'] - r['train_top1_error']):+.1f}", f"{r['val_loss']:.3f}")
                    for name, r in final.items()],
                   ("network", "train error (last epoch)", "test error", "test - train (points)", "test loss")))

# %% [markdown]
# ## 4. Is x0.5 a good stand-in for averaging the thinned networks?
#
# On the trained dropout network: the test-time prediction (all neurons, outputs scaled) against the
# average of the softmax outputs of 100 sampled thinned networks (dropout left on at test time).
# The convolutional part has no dropout, so its output is computed once; only the classifier (fc6 to
# fc8) runs 100 times.

# %%
net = nets["dropout"].eval()
with ta.no_grad():
    batches = [(common.run_layers(net, images, stop="flatten"), y) for images, y in lesson.loader(test_set, train_set)]
    features = F.concat([f for f, _ in batches], axis=0)
    labels = np.concatenate([y.numpy() for _, y in batches])
    scaled = F.softmax(common.run_layers(net, features, start="fc6")).numpy()
    net.train()  # dropout on: each pass samples a thinned network
    samples = lesson.pick(quick=10, default=100)
    average = np.zeros_like(scaled)
    for _ in lesson.progress(range(samples), "thinned networks"):
        average += F.softmax(common.run_layers(net, features, start="fc6")).numpy() / samples
net.eval()
agree = (scaled.argmax(axis=1) == average.argmax(axis=1)).mean()
print(f"on {len(labels)} test images: error with x0.5 at test time {(scaled.argmax(1) != labels).mean():.1%}, "
      f"with the average of {samples} thinned networks {(average.argmax(1) != labels).mean():.1%}; "
      f"the two agree on {agree:.1%} of the images")
lesson.record(thinned={"samples": samples, "scaled_error": float((scaled.argmax(1) != labels).mean()),
                       "average_error": float((average.argmax(1) != labels).mean()), "agree": float(agree)})

# %% [markdown]
# The figure: training and test error of both networks, epoch by epoch. The space between a
# network's two curves is its overfitting.

# %%
fig, ax = common.plt.subplots(figsize=(8, 4.5))
lesson.plot_errors(ax, {"no dropout": history["no_dropout"], "p = 0.5 in fc6, fc7": history["dropout"]},
                   "dropout ablation, AlexNet-CIFAR", train_set, train=True)
lesson.save(fig, "ablation")

# %% [markdown]
# ## Exercises
#
# In `lessons/exercises/05_dropout.py` you write `dropout_forward` and `dropout_backward`, in the paper's
# and the inverted form, on NumPy arrays, from stubs that state the task and the shapes. Copy the file, fill
# it in, and `tinyalex grade 05_dropout.py` checks your answers against the engine and finite differences.

# %%
lesson.done()
