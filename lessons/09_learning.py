# %% [markdown]
# # Lesson 09: details of learning (paper section 5)
#
# **The claim.** AlexNet is trained by stochastic gradient descent with batches of 128, momentum 0.9
# and weight decay 0.0005. The small weight decay "is important for the model to learn": it is not
# only a regulariser, it "reduces the model's training error". Weights start from N(0, 0.01^2);
# the biases of conv2, conv4, conv5 and of the hidden fully connected layers start at 1, which
# "accelerates the early stages of learning by providing the ReLUs with positive inputs"; the other
# biases start at 0. The learning rate starts at 0.01 and is divided by 10 whenever the validation
# error stops improving (three times, by hand, over about 90 passes through the 1.2 million images:
# five to six days on two GTX 580 GPUs).
#
# **The equation** (i the iteration, eps the learning rate, <dL/dw>_Di the gradient averaged over
# batch D_i):
#
#     v_{i+1} = 0.9 v_i - 0.0005 eps w_i - eps <dL/dw |_{w_i}>_{D_i}
#     w_{i+1} = w_i + v_{i+1}
#
# **The code.** `optim.SGD.step` in tinyalex/optim.py (in place, through one scratch buffer);
# `optim.ReduceOnPlateau` for "divide by 10 on a plateau" (`patience` epochs without a new best);
# the initialisation is the scheme "alexnet-paper" in tinyalex/nn/init.py (`models.alexnet(init="paper")`).

# %%
import numpy as np

import common
import tinyalex as ta
from tinyalex import data, functional as F, models, nn, optim

lesson = common.Lesson("09", "details of learning", "section 5",
                       runs={"quick": ("the update rule, the initialisations, a tiny training run (128 images, "
                                       "2 epochs)", "10 s"),
                             "default": ("the update rule, the initialisations, and a training run of "
                                         "AlexNet-CIFAR (1/8 width) on 2,000 synthetic images, 30 epochs", "8 min"),
                             "data": ("AlexNet-CIFAR (full width) on CIFAR-10, 40 epochs",
                                      "a day on the CPU, under an hour on a GPU")})

# %% [markdown]
# ## 1. The update rule, by hand and by `optim.SGD`
#
# Three steps on one 2x2 weight with made-up gradients, once with the equation written out in NumPy
# and once with the optimiser. They agree to the last bit of float64.

# %%
eps, momentum, decay = 0.01, 0.9, 0.0005
w0 = np.array([[0.5, -1.0], [2.0, 0.25]])
gradients = [np.array([[0.1, 0.2], [-0.3, 0.4]]) * (k + 1) for k in range(3)]
w, v = w0.copy(), np.zeros_like(w0)
for g in gradients:
    v = momentum * v - decay * eps * w - eps * g
    w = w + v
weight = ta.tensor(w0, dtype="float64", requires_grad=True)
sgd = optim.SGD([weight], lr=eps, momentum=momentum, weight_decay=decay)
for g in gradients:
    weight.grad = g.copy()
    sgd.step()
print("by hand:  ", w.ravel(), "\noptim.SGD:", weight.numpy().ravel())
assert np.array_equal(w, weight.numpy())

# %% [markdown]
# ## 2. Weight decay on its own
#
# With no gradient at all, the rule pulls every weight towards zero. The velocity settles at
# v = -0.0005 eps w / (1 - 0.9), so each step multiplies w by about 1 - 0.005 eps: a weight that the
# data do not hold up halves in about 140 / eps steps (14,000 at eps = 0.01, about 30 epochs of the
# paper's 10,000 batches). The measured decay:

# %%
weight = ta.tensor([1.0], dtype="float64", requires_grad=True)
sgd = optim.SGD([weight], lr=eps)
trajectory = []
for step in range(20_000):
    weight.grad = np.zeros(1)
    sgd.step()
    trajectory.append(weight.numpy()[0])
halving = int(np.argmax(np.array(trajectory) <= 0.5)) + 1
print(f"eps = {eps}: w falls from 1 to 0.5 in {halving:,} steps (predicted ln 2 / (0.005 eps) = "
      f"{np.log(2) / (decay * eps / (1 - momentum)):,.0f})")

# %% [markdown]
# ## 3. Biases of 1: positive inputs for the ReLUs
#
# One batch of images through AlexNet-CIFAR right after initialisation, three ways: the paper's
# scheme, the paper's weights with every bias at 0, and He's scheme (std sqrt(2 / fan_in), the
# default of `models.alexnet_cifar`). For each ReLU: the fraction of units that are active (pass a
# positive input) and the spread (std) of its output.

# %%
width = lesson.pick(quick=0.0625, default=0.125, data=1.0)
probe = data.SyntheticShapes(64, seed=lesson.args.seed + 1)
batch, _ = next(iter(lesson.loader(probe, probe)))  # minus the mean image, as in training


def relu_statistics(model):
    """{relu name: (fraction of outputs > 0, std of outputs)} for one forward pass of ``batch``."""
    stats, h = {}, batch
    with ta.no_grad():
        for name, layer in zip(model.names(), model):
            h = layer(h)
            if name.startswith("relu"):
                stats[name] = (float((h.numpy() > 0).mean()), float(h.numpy().std()))
    return stats


inits = {}
for name, scheme in (("paper (biases 1)", "paper"), ("paper, biases 0", "paper"), ("He", "he")):
    ta.manual_seed(lesson.args.seed)
    model = models.alexnet_cifar(columns=1, width=width, init=scheme).to(lesson.device).eval()
    if name == "paper, biases 0":
        for layer in model.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.constant_(layer.bias, 0.0)
    inits[name] = relu_statistics(model)
relus = list(inits["He"])
print(common.table([(r, *(f"{inits[n][r][0]:.0%}" for n in inits), *(f"{inits[n][r][1]:.1e}" for n in inits))
                    for r in relus],
                   ("layer", *(f"active: {n}" for n in inits), *(f"std: {n}" for n in inits))))

# %% [markdown]
# With the paper's biases nearly every unit behind a bias of 1 is active from the first step, so
# every one of them passes gradient; with biases of 0 about half are. (Without biases the active
# units do not depend on the scale of the weights at all: a ReLU network without biases is
# positively homogeneous, and both schemes scale the same random draws. Hence the identical columns
# for "paper, biases 0" and "He".) But the table shows the cost
# of N(0, 0.01^2) weights in a net this narrow: each layer multiplies the spread of the signal by
# about 0.01 sqrt(fan_in / 2), far below 1, so without the biases the signal all but vanishes before
# the classifier (std ~1e-6 and less), and the bias-1 layers carry only their constant. He's scale
# keeps the spread near 1 through every layer; that is why tinyalex's AlexNet-CIFAR starts from it
# (the comparison is in tinyalex/models/cifar.py), and why VGG needed a trick to train deep nets
# (lesson 12).
#
# ## 4. A training run, learning rate divided by 10 on plateaus
#
# AlexNet-CIFAR trained with the paper's rule from eps = 0.01; `optim.ReduceOnPlateau(factor=0.1,
# patience=1, min_lr=1e-5)` divides eps by 10 after one epoch without a new best test error, at most
# three times, as the paper did (it watched its validation error by hand; here the test split plays
# that part).

# %%
n_train, n_test = lesson.pick(quick=(128, 128), default=(2000, 1000))
epochs = lesson.pick(quick=2, default=30, data=40)
batch_size = lesson.pick(quick=32, default=32, data=128)  # small sets: more, smaller steps
train_set, test_set = lesson.datasets(n_train, n_test)
ta.manual_seed(lesson.args.seed)
model = models.alexnet_cifar(columns=1, width=width)
augment = data.transforms.Compose([data.transforms.RandomCrop(32, padding=4), data.transforms.RandomFlip(),
                                   data.transforms.ToFloat()])
history = lesson.train(model, train_set, test_set, epochs, 0.01, "alexnet", batch_size, transform=augment,
                       schedule=lambda opt: optim.ReduceOnPlateau(opt, factor=0.1, patience=1, min_lr=1e-5))
best = min(history, key=lambda r: r["val_top1_error"])
seconds = sum(r["seconds"] for r in history)
print(common.table([(r["epoch"], f"{r['lr']:g}", f"{r['train_loss']:.3f}", f"{r['train_top1_error']:.1%}",
                     f"{r['val_top1_error']:.1%}", f"{r['val_top5_error']:.1%}") for r in history],
                   ("epoch", "lr", "train loss", "train top-1 err", "test top-1 err", "test top-5 err")))
print(f"best test top-1 error {best['val_top1_error']:.1%} (epoch {best['epoch']}), top-5 {best['val_top5_error']:.1%}; "
      f"{seconds:.0f} s of training on {lesson.device}, {len(train_set) * len(history) / seconds:.0f} images/s")

# %% [markdown]
# The figure: left, the ReLUs that are active at initialisation; right, the training run, with the
# learning rate (log scale) on the right-hand axis.

# %%
fig, (left, right) = common.plt.subplots(1, 2, figsize=(13, 4.5))
pos = np.arange(len(relus))
for k, n in enumerate(inits):
    left.bar(pos + (k - 1) * 0.27, [100 * inits[n][r][0] for r in relus], 0.27, label=n)
left.set_xticks(pos, relus)
left.set(ylabel="active ReLUs at initialisation (%)", ylim=(0, 125), title="initialisation (section 5)")
left.legend(loc="upper center", ncol=3, fontsize=8)
e = [r["epoch"] for r in history]
right.plot(e, [100 * r["train_top1_error"] for r in history], "--o", ms=3, label="train top-1")
right.plot(e, [100 * r["val_top1_error"] for r in history], "-o", ms=3, label="test top-1")
right.plot(e, [100 * r["val_top5_error"] for r in history], "-s", ms=3, label="test top-5")
right.set(xlabel="epochs", ylabel="error rate (%)",
          title=f"AlexNet-CIFAR, {len(train_set):,} {lesson.data_name} images")
right.legend(loc="upper right")
rate = right.twinx()
rate.step(e, [r["lr"] for r in history], where="mid", color="grey", alpha=0.6)
rate.set(yscale="log", ylabel="learning rate (grey)")
lesson.save(fig, "learning")

# %% [markdown]
# ## Exercises
#
# In `lessons/exercises/07_sgd.py` you write `sgd_step`: momentum 0.9 and weight decay 0.0005 times the
# learning rate, as in section 5, on NumPy arrays, from stubs that state the task and the shapes. Copy the
# file, fill it in, and `tinyalex grade 07_sgd.py` checks your answers against the engine.

# %%
lesson.done()
