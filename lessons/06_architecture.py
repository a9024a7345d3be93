# %% [markdown]
# # Lesson 06: the architecture (paper section 3.5, Figure 2)
#
# **The claim.** The network has eight learned layers, five convolutional and three fully connected,
# with about 60 million parameters and 650,000 neurons. The input is 224x224x3; conv1 filters it with
# 96 kernels of 11x11x3 at stride 4, conv2 with 256 of 5x5x48, conv3 with 384 of 3x3x256, conv4 with
# 384 of 3x3x192, conv5 with 256 of 3x3x192; the fully connected layers have 4096, 4096 and 1000
# neurons. The text gives the neurons per layer as
# 150,528 - 253,440 - 186,624 - 64,896 - 64,896 - 43,264 - 4096 - 4096 - 1000.
#
# **The equations.** For a conv layer with C_in input maps, C_out kernels of KH x KW, `groups` columns
# that do not see each other (2 for conv2, conv4, conv5: "kernels ... connected only to those kernel
# maps ... which reside on the same GPU"), and output OH x OW:
#
#     OH = floor((H + 2 p - KH) / s) + 1                  (F.conv_outsize)
#     parameters    = C_out * (C_in / groups * KH * KW + 1)
#     multiply-adds = OH * OW * C_out * C_in / groups * KH * KW      (per image)
#
# and a fully connected layer from n to m neurons has m * (n + 1) parameters and n * m multiply-adds.
#
# **The code.** `models.alexnet` in tinyalex/models/alexnet.py builds the network; `ta.summary`
# (tinyalex/summary.py) runs one image through it and tabulates each layer.

# %%
import numpy as np

import common
import tinyalex as ta
from tinyalex import functional as F
from tinyalex import models

lesson = common.Lesson("06", "the architecture", "section 3.5, Figure 2",
                       runs={"quick": ("summary() of the paper's AlexNet at 227x227 (one image)", "10 s"),
                             "default": ("the same", "10 s")})

# %% [markdown]
# ## 1. The layer table
#
# One column (`columns=1`, conv2/4/5 as two-group convolutions) computes the same function as the
# paper's two columns (lesson 03) and has the same parameters; its table is the easier one to read.

# %%
model = models.alexnet(num_classes=1000, columns=1)
table = ta.summary(model, (3, 227, 227))
n_params = sum(p.size for p in model.parameters())
print(f"parameters: {n_params:,} (the paper: '60 million'; exactly 60,965,224)")
assert n_params == 60_965_224

# %% [markdown]
# ## 2. Neurons per layer, against the paper
#
# Our counts are the output sizes of each learned layer. All but one match the paper. conv1 has 55 x 55
# x 96 = 290,400 neurons, while the paper prints 253,440 = 55 x 48 x 96, which matches no map size the
# text describes; it is best read as a slip. The paper's first number, 150,528 = 224 x 224 x 3, counts
# the input pixels.

# %%
paper = {"conv1": 253_440, "conv2": 186_624, "conv3": 64_896, "conv4": 64_896, "conv5": 43_264,
         "fc6": 4096, "fc7": 4096, "fc8": 1000}
learned = [r for r in table.rows if r.neurons]
print(common.table([(r.layer, "x".join(map(str, r.output_shape)), r.neurons, paper[r.layer],
                     "yes" if r.neurons == paper[r.layer] else "no: 55 x 55 x 96 = 290,400")
                    for r in learned], ("layer", "output", "neurons (ours)", "neurons (paper)", "same")))
print(f"neurons in all: {sum(r.neurons for r in learned):,} (the paper: '650,000')")

# %% [markdown]
# ## 3. Where the parameters are, and where the work is
#
# The two kinds of layers split the network in opposite ways: the convolutions hold few weights but
# reuse each of them at every position of the map, the fully connected layers use each weight once
# per image but hold almost all of them.

# %%
conv = [r for r in learned if r.kind == "Conv2d"]
fc = [r for r in learned if r.kind == "Linear"]
for name, part in (("conv1-conv5", conv), ("fc6-fc8", fc)):
    p, m = sum(r.parameters for r in part), sum(r.multiply_adds for r in part)
    print(f"{name}: {p:>12,} parameters ({p / table.total_parameters:6.1%}), "
          f"{m:>13,} multiply-adds per image ({m / table.total_multiply_adds:6.1%})")
print(f"fc6 alone: {fc[0].parameters:,} parameters = 9216 x 4096 + 4096 ({fc[0].parameters / table.total_parameters:.1%})")
print(f"one forward pass: {table.total_multiply_adds / 1e9:.2f} G multiply-adds per image")

# %% [markdown]
# ## 4. 224 or 227?
#
# The paper's input is "224 x 224 x 3", and conv1 (11x11, stride 4) gives 55x55 maps. But
# floor((224 - 11) / 4) + 1 = 54. The sizes fit from 227, or from 224 padded by 2 (torchvision's
# choice, `models.alexnet_torchvision`). Follow each input size through the layers with `F.conv_outsize`:

# %%
plan = [("conv1", 11, 4), ("pool1", 3, 2), ("conv2", 5, 1), ("pool2", 3, 2), ("conv3", 3, 1),
        ("conv4", 3, 1), ("conv5", 3, 1), ("pool5", 3, 2)]
padding = {"conv2": 2, "conv3": 1, "conv4": 1, "conv5": 1}


def sizes(image, conv1_padding=0):
    out, size = [], image
    for name, k, stride in plan:
        size = F.conv_outsize(size, k, stride, conv1_padding if name == "conv1" else padding.get(name, 0))
        out.append(size)
    return out


chains = {"224": sizes(224), "227": sizes(227), "224, conv1 padded by 2": sizes(224, 2)}
print(common.table([(k, *v, 256 * v[-1] ** 2) for k, v in chains.items()],
                   ("input", *(n for n, _, _ in plan), "fc6 inputs")))
try:
    ta.summary(model, (3, 224, 224), print_table=False)
except ValueError as e:
    print("the paper's network on a 224x224 image stops at fc6:\n ", e)

# %% [markdown]
# The figure: parameters, multiply-adds and neurons of each learned layer, ours against the paper's.

# %%
names = [r.layer for r in learned]
pos = np.arange(len(names))
fig, axes = common.plt.subplots(1, 3, figsize=(15, 4.5))
axes[0].barh(pos, [r.parameters / 1e6 for r in learned], color="C0")
axes[0].set(xlabel="parameters (millions)", title=f"parameters: {table.total_parameters:,} in all")
axes[1].barh(pos, [r.multiply_adds / 1e6 for r in learned], color="C1")
axes[1].set(xlabel="multiply-adds per image (millions)",
            title=f"work: {table.total_multiply_adds / 1e9:.2f} G multiply-adds per image")
axes[2].barh(pos - 0.2, [r.neurons for r in learned], 0.4, label="ours (55x55x96 for conv1)")
axes[2].barh(pos + 0.2, [paper[n] for n in names], 0.4, label="the paper's text")
axes[2].set(xscale="log", xlabel="neurons (log scale)", title="neurons per layer")
axes[2].legend(fontsize=8)
for ax, key, total in ((axes[0], "parameters", table.total_parameters),
                       (axes[1], "multiply_adds", table.total_multiply_adds)):
    for y, r in zip(pos, learned):
        ax.text(getattr(r, key) / 1e6, y, f" {getattr(r, key) / total:.1%}", va="center", fontsize=8)
    ax.margins(x=0.15)
for ax in axes:
    ax.set_yticks(pos, names)
    ax.invert_yaxis()
lesson.save(fig, "architecture")
lesson.done()
