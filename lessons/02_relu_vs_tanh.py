# %% [markdown]
# # Lesson 02: ReLU vs tanh (paper section 3.1, Figure 1)
#
# **The claim.** Saturating units such as tanh learn slowly: where |x| is large their slope is almost
# zero, so the gradient that reaches the weights below them almost vanishes. The paper's Rectified
# Linear Units, f(x) = max(0, x), do not saturate for x > 0. In Figure 1 a four-layer convolutional
# network with ReLUs reaches 25% training error on CIFAR-10 **six times faster** (in epochs) than the
# same network with tanh units, each with the learning rate that made it fastest, no regularisation.
#
# **The equations.**
#
#     relu(x) = max(0, x),   relu'(x) = 1 if x > 0 else 0
#     tanh'(x) = 1 - tanh(x)^2            (< 0.071 once |x| > 2: saturated)
#
# **The code.** `F.relu` and `F.tanh` in tinyalex/functional/activation.py: each a `Function` whose
# backward multiplies the incoming gradient by the derivative above, computed from the saved output.
# The network is `common.four_layer_cnn` (lessons/common.py): three 5x5 conv layers (32, 32, 64
# maps), each followed by the nonlinearity and a 3x3/2 max pool, then one fully connected layer.

# %%
import numpy as np

import common
import tinyalex as ta
from tinyalex import functional as F

lesson = common.Lesson("02", "ReLU vs tanh", "section 3.1, Figure 1",
                       runs={"quick": ("two tiny training runs (128 images, 2 epochs each)", "10 s"),
                             "default": ("the four-layer CNN with ReLU and with tanh, 2,000 synthetic images, "
                                         "12 epochs each", "3 min on an idle CPU"),
                             "data": ("the same on the CIFAR-10 training set, 30 epochs each",
                                      "2 h on the CPU, minutes on a GPU")})

# %% [markdown]
# ## 1. Where tanh saturates
#
# We ask backward itself for the slopes, on a grid of inputs.

# %%
grid = np.linspace(-4, 4, 161)
slopes = {}
for name, f in (("relu", F.relu), ("tanh", F.tanh)):
    x = ta.tensor(grid, dtype="float64", requires_grad=True)
    f(x).backward(np.ones_like(grid))
    slopes[name] = x.grad
for v in (0.5, 1.0, 2.0, 3.0):
    i = np.argmin(np.abs(grid - v))
    print(f"x = {v}: relu' = {slopes['relu'][i]:.3f}, tanh' = {slopes['tanh'][i]:.3f}")

# %% [markdown]
# ## 2. The race to 25% training error
#
# Both networks start from the same seed, see the same batches in the same order and use the paper's
# SGD with momentum 0.9 and, as in Figure 1, no regularisation (no weight decay). They share one
# learning rate: the paper tuned each network's separately, and a search per network would multiply
# the run time. We record the training error of each epoch
# (measured while it trains, as in Figure 1) and find where it first crosses 25%, interpolating
# linearly between epochs. A small run may not get that far, so we also time the race to 50%.

# %%
n_train, n_test = lesson.pick(quick=(128, 64), default=(2000, 500))
epochs = lesson.pick(quick=2, default=12, data=30)
lr = 0.01  # the paper's initial learning rate (section 5)
train_set, test_set = lesson.datasets(n_train, n_test)
targets = (0.5, 0.25)

history, nets = {}, {}
for name in ("relu", "tanh"):
    ta.manual_seed(lesson.args.seed)  # the same initial weights for both
    nets[name] = common.four_layer_cnn(activation=name)
    history[name] = lesson.train(nets[name], train_set, test_set, epochs, lr, name, weight_decay=0.0)


def epochs_to(errors, target):
    """Fractional epoch where the error first reaches ``target`` (linear between epochs), or None.

    Epoch 0 is the untrained network, at chance: 90% error on 10 balanced classes.
    """
    curve = np.concatenate([[0.9], errors])
    below = np.nonzero(curve <= target)[0]
    if not len(below):
        return None
    i = below[0]
    return i - 1 + (curve[i - 1] - target) / (curve[i - 1] - curve[i])


errors = {k: np.array([r["train_top1_error"] for r in h]) for k, h in history.items()}
reached = {(k, t): epochs_to(e, t) for k, e in errors.items() for t in targets}
rows = []
for t in targets:
    relu, tanh = reached["relu", t], reached["tanh", t]
    ratio = f"{tanh / relu:.1f}x" if relu and tanh else f"> {epochs / relu:.1f}x" if relu else "-"
    rows.append((f"{t:.0%}", *(f"> {epochs}" if r is None else f"{r:.2f}" for r in (relu, tanh)), ratio))
print(common.table(rows, ("training error", "epochs, ReLU", "epochs, tanh", "tanh / ReLU (paper, at 25%: ~6x)")))
for k in errors:
    print(f"{k}: final training error {errors[k][-1]:.1%}, test error {history[k][-1]['val_top1_error']:.1%}")

# %% [markdown]
# Did the tanh units saturate? After training, we feed 256 test images (minus the training set's mean
# image, as in training) through the tanh network and look at the input x of every tanh unit: where
# |x| > 2 its slope is below 0.071.

# %%
x, _ = next(iter(lesson.loader(test_set, train_set, batch_size=256)))
with ta.no_grad():
    convs = 0
    for layer in nets["tanh"]:
        convs += isinstance(layer, ta.nn.Conv2d)
        if isinstance(layer, ta.nn.Tanh):
            print(f"tanh after conv{convs}: {np.mean(np.abs(x.numpy()) > 2):.1%} of its inputs have |x| > 2 (saturated)")
        x = layer(x)

# %% [markdown]
# ReLU's advantage needs saturated tanh units. If only a few per cent of them see |x| > 2, tanh works
# in its near-linear range, its gradients do not vanish, and the race can go either way. That is what
# the default run shows (lessons/README.md): in a small network trained from He-initialised weights
# on mean-subtracted pixels in [0, 1], few tanh units saturate, and with one learning rate for both
# tanh was not the slower one. The paper's larger claim is about its own setting: CIFAR-10, pixels
# on [0, 255], its own initialisation, and each network at its own best learning rate.
#
# The paper's Figure 1, redrawn from our runs: training error per epoch, ReLU solid, tanh dashed,
# and the slopes that explain it.

# %%
fig, (left, right) = common.plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]})
for k, style in (("relu", "-"), ("tanh", "--")):
    crossings = ", ".join(f"{t:.0%} at epoch {reached[k, t]:.1f}" if reached[k, t] else f"{t:.0%} not reached"
                          for t in targets)
    left.plot(np.arange(epochs + 1), 100 * np.concatenate([[0.9], errors[k]]), style, marker="o", ms=3,
              label=f"{k}: {crossings}")
for t in targets:
    left.axhline(100 * t, color="grey", lw=0.8, ls=":")
left.set(xlabel="epochs", ylabel="training error rate (%)", ylim=(0, 95),
         title=f"four-layer CNN, {len(train_set):,} {lesson.data_name} images")
left.legend()
for k, style in (("relu", "-"), ("tanh", "--")):
    right.plot(grid, slopes[k], style, label=f"{k}'(x)")
right.set(xlabel="x", ylabel="derivative (from backward)", title="tanh saturates, ReLU does not")
right.legend()
lesson.save(fig, "relu_vs_tanh")
lesson.done()
