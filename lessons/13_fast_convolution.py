# %% [markdown]
# # Lesson 13: fast convolution, Winograd's minimal filtering (Lavin and Gray 2016)
#
# **The claim.** A stride-1 convolution with small filters needs far fewer multiplications than its
# direct form. Lavin and Gray ("Fast Algorithms for Convolutional Neural Networks", 2016) use
# Winograd's minimal filtering algorithms: F(m, r) computes m outputs of an r-tap filter with
# m + r - 1 multiplications instead of m r, and nested in two dimensions F(m x m, r x r) computes an
# m x m block of outputs from a tile of (m + r - 1)^2 inputs with (m + r - 1)^2 multiplications
# instead of m^2 r^2. For 3x3 filters (all of VGG, AlexNet's conv3-5) F(2x2, 3x3) needs 16 instead
# of 36 (2.25x fewer) and F(4x4, 3x3) 36 instead of 144 (4x fewer): the algorithms "can reduce the
# arithmetic complexity of a convnet layer by up to a factor of 4". The price: the data are
# transformed before and after (additions and multiplications by small constants, once per tile and
# filter rather than once per product, but the transformed tiles hold alpha^2 / m^2 times as many
# values as the outputs), and in float32 the error grows with the tile.
#
# **The equation** (one tile d of alpha x alpha inputs, alpha = m + r - 1, one r x r filter g):
#
#     Y = A^T [ (G g G^T) * (B^T d B) ] A          (* element-wise; Y is m x m)
#
# A^T (m x alpha), G (alpha x r) and B^T (alpha x alpha) come from the Cook-Toom construction: G
# evaluates the filter, as a polynomial, at alpha points; the element-wise product multiplies two
# polynomials point by point; A^T and B^T interpolate back. Over a layer the element-wise product,
# summed over the input channels, becomes alpha^2 matrix products, one per position (xi, nu) in
# the tile: M[xi, nu] (O x tiles) = U[xi, nu] (O x C) @ V[xi, nu] (C x tiles).
#
# **The code.** tinyalex/functional/winograd.py: `cook_toom(m, r)` builds (A^T, G, B^T) in exact
# fractions from the points in `POINTS`; `Winograd2d` is the layer (forward and both gradients by the
# same algorithm); `choose` holds the measured rule of `F.conv2d(..., algorithm="auto")`. The
# reference is im2col + GEMM: `Conv2d` in tinyalex/functional/conv.py, its copies in
# tinyalex/functional/im2col.py.

# %%
import collections
from fractions import Fraction

import numpy as np
from matplotlib.ticker import NullFormatter

import common
import tinyalex as ta
from tinyalex import bench, models
from tinyalex import functional as F
from tinyalex.functional import winograd
from tinyalex.functional.space_to_depth import winograd_conv

lesson = common.Lesson("13", "fast convolution", "Lavin and Gray 2016",
                       runs={"quick": ("the multiplication counts, the worked example, float32 errors on two "
                                       "layers and timings of the layers at batch 1 (one round)", "5 s"),
                             "default": ("the multiplication counts, the worked example, float32 errors on "
                                         "eight AlexNet, VGG and four-layer CNN layers, and im2col against "
                                         "Winograd timed on fifteen layers (5 rounds)", "2.5 min on a 2-core CPU")})

# %% [markdown]
# ## 1. Multiplications per output
#
# Direct convolution: each output of a layer whose filters see Cg = C/groups input channels is a sum
# of Cg r^2 products. im2col + GEMM computes exactly those products: it only copies every receptive
# field into a column, so the layer is one matrix product (O/G x Cg r^2) @ (Cg r^2 x OH OW) per group.
# Winograd F(m x m, r x r) makes m^2 outputs of one filter and one input channel from alpha^2
# products: Cg alpha^2 / m^2 per output. (Its transforms cost additions and multiplications by
# constants; U is made once per filter, V once per tile and shared by all O filters; they are left
# out of these counts.) The tiles the engine has interpolation points for:

# %%
TILES = [(m, r) for r in (3, 5) for m in (2, 4, 5) if m + r - 1 in winograd.POINTS]  # F(m x m, r x r)
PAPER_REDUCTION = {(2, 3): "36/16 = 2.25", (4, 3): "144/36 = 4"}


def tile_name(m, r):
    return f"F({m}x{m},{r}x{r})"


TILE_OF = {tile_name(m, r): (m, r) for m, r in TILES}
print(common.table([(tile_name(m, r), m + r - 1, r * r, f"{(m + r - 1) ** 2 / m ** 2:g}",
                     f"{(m * r) ** 2 / (m + r - 1) ** 2:.2f}x", PAPER_REDUCTION.get((m, r), "-"))
                    for m, r in TILES],
                   ("algorithm", "tile", "direct: products per output and channel", "Winograd",
                    "fewer", "Lavin and Gray")))

# %% [markdown]
# On real layers the map is not a whole number of tiles: the remainder tiles compute outputs past the
# edge that are dropped (13x13 maps in 4x4 tiles fill 169 of 256 outputs, in 5x5 tiles 169 of 225),
# and a filter of size 1x1 has no Winograd algorithm at all (r = 1: alpha = m, nothing to save). A
# filter of stride s is a stride-1 filter over the input's s x s polyphase components stacked as
# channels (space-to-depth, tinyalex/functional/space_to_depth.py): AlexNet's conv1, 11x11 at stride
# 4 over 3 channels, is 3x3 over 48 (its 12x12 taps padded with 23 zeros), which Winograd's 3x3 tiles
# take. The layers come from the engine's models (`ta.summary` of one image; weights left as zeros);
# the direct count is the summary's multiply-adds, the im2col count the GEMM's dimensions.

# %%
Layer = collections.namedtuple("Layer", "name conv input output multiply_adds first")


def conv_layers(model, image):
    """Every convolution of ``model`` on one image of shape ``image`` (C, H, W), from ``ta.summary``:
    its module, input and output shapes (a row's input is the previous row's output)."""
    rows = ta.summary(model, image, print_table=False).rows
    modules = dict(model.named_modules())
    inputs = [tuple(image)] + [r.output_shape for r in rows[:-1]]
    convs = [(r, x) for r, x in zip(rows, inputs) if r.kind == "Conv2d"]
    return {r.layer.split(".")[-1]: Layer(r.layer.split(".")[-1], modules[r.layer], x, r.output_shape,
                                          r.multiply_adds, first=i == 0) for i, (r, x) in enumerate(convs)}


NETWORKS = {"AlexNet": conv_layers(models.alexnet(columns=1, init=None), (3, 227, 227)),
            "AlexNet-CIFAR": conv_layers(models.alexnet_cifar(columns=1, init=None), (3, 32, 32)),
            "VGG-16": conv_layers(models.vgg("D", init=None), (3, 224, 224)),
            "VGG-C": conv_layers(models.vgg("C", init=None), (3, 224, 224)),  # for its 1x1 layers
            # the lessons' own network, whose layers are numbered, not named: conv1, conv2, conv3
            "four-layer-CNN": {f"conv{i}": layer._replace(name=f"conv{i}") for i, layer in enumerate(
                conv_layers(models.four_layer_cnn(), (3, 32, 32)).values(), start=1)}}


def refusal(layer):
    """None if Winograd can compute ``layer``, else the engine's reason (``choose``'s error)."""
    c = layer.conv
    try:
        winograd.choose("winograd", (1, *layer.input), c.weight.shape, c.stride, c.padding, c.groups)
    except ValueError as e:
        return str(e).removeprefix("conv2d: algorithm='winograd' ")
    return None


def strided(layer):
    """(s, r, Cg): ``layer``'s stride, and the filter size and input channels per group of its stride-1
    form (the space-to-depth: r = ceil(k / s), s^2 times the channels; k and Cg themselves at stride 1)."""
    c = layer.conv
    s = c.stride[0]
    return s, -(-c.kernel_size[0] // s), c.in_channels // c.groups * s * s


def tiles_for(layer):
    """The F(m, r) that fit ``layer``: r its filter size, or its space-to-depth's."""
    return [] if refusal(layer) else [(m, r) for m, r in TILES if r == strided(layer)[1]]


def im2col_products(layer):
    """The GEMMs of im2col: per group (O/G x Cg KH KW) @ (Cg KH KW x OH OW), per image."""
    (O, OH, OW), c = layer.output, layer.conv
    depth = c.in_channels // c.groups * c.kernel_size[0] * c.kernel_size[1]
    return c.groups * (O // c.groups) * depth * (OH * OW)


def winograd_products(layer, m):
    """F(m x m, r x r) on ``layer``, remainder tiles included: alpha^2 products per tile, filter and
    input channel (of its space-to-depth where strided), per image."""
    (O, OH, OW), (_, r, Cg) = layer.output, strided(layer)
    return O * -(-OH // m) * -(-OW // m) * (m + r - 1) ** 2 * Cg


def shape(s):
    return "x".join(map(str, s))


def filters(c):
    """A conv layer's filters as O@KHxKW/stride, with gG for groups."""
    groups = f" g{c.groups}" if c.groups > 1 else ""
    return f"{c.out_channels}@{c.kernel_size[0]}x{c.kernel_size[1]}/{c.stride[0]}{groups}"


counts = {}
for network in ("AlexNet", "VGG-16"):
    counts[network], rows, refused = {}, [], []
    for layer in NETWORKS[network].values():
        assert im2col_products(layer) == layer.multiply_adds  # im2col only reorganises
        products = {"direct": layer.multiply_adds, "im2col": im2col_products(layer)}
        products |= {tile_name(m, r): winograd_products(layer, m) for m, r in tiles_for(layer)}
        counts[network][layer.name] = products
        rows.append((layer.name, shape(layer.input), filters(layer.conv),
                     *(f"{products[k] / 1e6:,.1f}" if k in products else "-" for k in ("direct", "im2col", *TILE_OF)),
                     f"{layer.multiply_adds / min(products.values()):.2f}x"))
        refused += [f"{layer.name}: no Winograd, {refusal(layer)}"] if refusal(layer) else []
    direct = sum(p["direct"] for p in counts[network].values())
    fewest = sum(min(p.values()) for p in counts[network].values())
    first = next(iter(counts[network].values()))["direct"]
    counts[network]["total"] = {"direct": direct, "fewest": fewest}
    print(f"\n{network}: millions of multiplications per image")
    print(common.table(rows, ("layer", "input", "filters", "direct", "im2col", *TILE_OF, "fewer")))
    print("\n".join(refused))
    print(f"{network} conv layers: {direct / 1e9:.2f} G multiplications per image directly ({first / direct:.0%} "
          f"of them in the first layer), {fewest / 1e9:.2f} G with the best tile where one fits: "
          f"{direct / fewest:.2f}x fewer")
lesson.record(tiles={name: {"alpha": m + r - 1, "direct": r * r, "winograd": (m + r - 1) ** 2 / m ** 2}
                     for name, (m, r) in TILE_OF.items()},
              multiplications=counts)
# keys: tiles[F(mxm,rxr)] = {alpha (the tile side), direct and winograd (products per output and input
# channel)}; multiplications[network][layer] = products per image {direct, im2col, and F(...) for each
# tile that fits}; multiplications[network]["total"] = {direct, fewest (the best tile where one fits)}

# %% [markdown]
# AlexNet's convolutions get about 4x: conv1 (11x11 at stride 4, a sixth of their multiplications)
# gets 3.9x as 3x3 filters over 48 channels in the 7x7 tiles of F(5x5, 3x3) (4.59x less its 23 zero
# taps of 144), conv2's 5x5 filters 6.25x from the 9x9 tiles of F(5x5, 5x5) (7.72x less the remainder
# tiles of its 27x27 maps, 729 of 900 outputs used; 5.8x from the 8x8 tiles of F(4x4, 5x5), 2.78x
# from 6x6 tiles), and conv3-5 3.45x from F(5x5, 3x3), whose tiles
# fill 169 of 225 outputs on 13x13 maps where F(4x4, 3x3)'s fill 169 of 256 (2.64x). VGG-16 is
# nothing but stride-1 3x3 layers on maps of 224 / 2^k, close to the ideal 4x: 4.55x and 4.36x where
# F(5x5, 3x3)'s tiles cover 224 and 112 (45 and 23 tiles a side), 4.00x on its 14x14 maps.
#
# ## 2. The transforms on a worked example
#
# F(2, 3) at the points 0, 1, -1 and infinity (`winograd.POINTS[4]`). G's rows evaluate the filter
# polynomial g(p) = g0 + g1 p + g2 p^2 at each point (at infinity, its top coefficient g2):

# %%
AT, G, BT = winograd.cook_toom(2, 3)


def show(name, matrix):
    """A small matrix with its entries as fractions (exact: they are small rationals)."""
    cells = [[str(Fraction(float(v)).limit_denominator(1000)) for v in row] for row in np.atleast_2d(matrix)]
    width = max(len(c) for row in cells for c in row)
    print(f"{name} =\n" + "\n".join("  [" + " ".join(c.rjust(width) for c in row) + "]" for row in cells))


show("A^T", AT)
show("G", G)
show("B^T", BT)
for p, row in zip(winograd.POINTS[4], G):
    row = [int(v) for v in row]
    print(f"p = {p}: G row {row} = [1, p, p^2], so (G g) = g({p})" if p is not None
          else f"p = infinity: G row {row}, so (G g) = g2, the top coefficient")

# %% [markdown]
# The halves sit in B^T here; Lavin and Gray put them into G (rows [1/2, 1/2, 1/2] and
# [1/2, -1/2, 1/2]) and have a B^T of 0 and +-1 only. The product is the same.
#
# Now one 4x4 tile d and one 3x3 filter g (a Sobel filter), by hand: transform the tile
# (V = B^T d B) and the filter (U = G g G^T), multiply element-wise (16 products), transform back
# (Y = A^T M A), and compare with the direct correlation (2 x 2 outputs x 9 products = 36):

# %%
d = np.array([[3, 1, 4, 1], [5, 9, 2, 6], [5, 3, 5, 8], [9, 7, 9, 3]], dtype=np.float64)
g = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float64)
V = BT @ d @ BT.T
U = G @ g @ G.T
M = U * V
Y = AT @ M @ AT.T
show("V = B^T d B", V)
show("U = G g G^T", U)
show("M = U * V (16 multiplications)", M)
show("Y = A^T M A", Y)
direct = np.array([[np.sum(g * d[i:i + 3, j:j + 3]) for j in range(2)] for i in range(2)])
show("direct: Y[i, j] = sum_uv g[u, v] d[i + u, j + v] (36 multiplications)", direct)
engine = winograd.Winograd2d((0, 0), 1, 2)(ta.tensor(d[None, None]), ta.tensor(g[None, None])).numpy()[0, 0]
reference = F.conv2d(ta.tensor(d[None, None]), ta.tensor(g[None, None]), algorithm="im2col").numpy()[0, 0]
worked = {"by_hand_minus_direct": float(np.abs(Y - direct).max()),
          "engine_minus_direct": float(np.abs(engine - direct).max()),
          "im2col_minus_direct": float(np.abs(reference - direct).max())}
print("max |difference| in float64:", worked)
assert max(worked.values()) == 0.0  # small integers and halves: every step is exact in float64
lesson.record(worked_example=dict(worked, Y=Y))  # keys: worked_example = {the three differences, Y}

# %% [markdown]
# That is the clear version. The fast one is the same arithmetic over a whole layer at once
# (`winograd.correlate`): `input_tiles` cuts the padded input into overlapping tiles, one strided copy
# per position in the tile (as im2col does per kernel offset); `transform` applies B^T . B to all tiles
# and G . G^T to all filters with two GEMMs each; the element-wise products, summed over channels, are
# alpha^2 GEMMs (O x C) @ (C x N TH TW); and A^T . A brings every tile back. On a small layer:

# %%
rng = np.random.default_rng(lesson.args.seed)
x_small, w_small = rng.standard_normal((2, 3, 6, 7)), rng.standard_normal((4, 3, 3, 3))
D, (OH, OW) = winograd.input_tiles(x_small, 2, 4, 1, 1)
V_all = winograd.transform(BT, D)
U_all = winograd.transform(G, w_small.transpose(2, 3, 0, 1))
print(f"x {x_small.shape}, w {w_small.shape}, padding 1 -> {OH}x{OW} outputs in tiles D {D.shape} "
      f"(alpha, alpha, C, TH, TW, N); V {V_all.shape}, U {U_all.shape} (alpha, alpha, O, C)")
(N, C, _, _), O, n_tiles = x_small.shape, w_small.shape[0], int(np.prod(D.shape[3:]))
print(f"products: 16 GEMMs of ({O} x {C}) @ ({C} x {n_tiles} tiles) = {16 * O * C * n_tiles:,} multiplications, "
      f"against im2col's {N * O * OH * OW * C * 9:,}")
xs, ws = ta.tensor(x_small), ta.tensor(w_small)
layer_difference = float(np.abs(winograd.Winograd2d((1, 1), 1, 2)(xs, ws).numpy()
                                - F.conv2d(xs, ws, padding=1, algorithm="im2col").numpy()).max())
print(f"Winograd2d F(2x2,3x3) against im2col in float64: max |difference| {layer_difference:.1e}")
assert layer_difference < 1e-12

# %% [markdown]
# ## 3. The price in float32: the error grows with the tile
#
# For each layer, one image (the error depends on the channels and filters, not on the batch), random
# inputs, He-scaled weights, a random upstream gradient: the max relative error
# max |got - want| / max |want| of the output y and of both gradients gx and gW, each algorithm in
# float32 against im2col in float64. im2col's own float32 error is the baseline.

# %%
def run(layer, m, x, w):
    """``layer``'s convolution of x by w with im2col (m None) or F(m x m, r x r)."""
    c = layer.conv
    if m is None:
        return F.conv2d(x, w, stride=c.stride, padding=c.padding, groups=c.groups, algorithm="im2col")
    return winograd_conv(c.stride, c.padding, c.groups, m)(x, w)


def outputs(layer, m, arrays, dtype):
    """y, gx and gW of ``layer`` by ``m`` (``run``) on ``arrays`` = (x, w, gy) in ``dtype``, as NumPy arrays."""
    x, w = (ta.tensor(a, dtype=dtype, device=lesson.device, requires_grad=True) for a in arrays[:2])
    y = run(layer, m, x, w)
    y.backward(ta.tensor(arrays[2], dtype=dtype, device=lesson.device))
    return [ta.backend.to_numpy(a) for a in (y.data, x.grad, w.grad)]


def relative_errors(layer, m, arrays, reference):
    """max |got - want| / max |want| of y, gx and gW for ``layer`` by ``m`` in float32."""
    got = outputs(layer, m, arrays, "float32")
    return {k: float(np.abs(a - b).max() / np.abs(b).max()) for k, a, b in zip(("y", "gx", "gW"), got, reference)}


def layer_inputs(layer, N, rng):
    """Random x (N, C, H, W), He-scaled w and a random gy for ``layer``."""
    c = layer.conv
    fan_in = c.in_channels // c.groups * c.kernel_size[0] * c.kernel_size[1]
    return (rng.standard_normal((N, *layer.input)), rng.standard_normal(c.weight.shape) * np.sqrt(2 / fan_in),
            rng.standard_normal((N, *layer.output)))


ERROR_LAYERS = lesson.pick(quick=[("AlexNet-CIFAR", "conv2"), ("AlexNet-CIFAR", "conv4")],
                           default=[("AlexNet", "conv2"), ("AlexNet", "conv3"), ("AlexNet", "conv4"),
                                    ("AlexNet-CIFAR", "conv2"), ("AlexNet-CIFAR", "conv3"),
                                    ("VGG-16", "conv3_1"), ("VGG-16", "conv5_1"), ("four-layer-CNN", "conv2")])
errors, rows = {}, []
for network, name in ERROR_LAYERS:
    layer = NETWORKS[network][name]
    arrays = layer_inputs(layer, 1, rng)
    reference = outputs(layer, None, arrays, "float64")
    label = f"{network} {name}"
    errors[label] = {"im2col": relative_errors(layer, None, arrays, reference)}
    for m, r in tiles_for(layer):
        errors[label][tile_name(m, r)] = relative_errors(layer, m, arrays, reference)
    for algorithm, e in errors[label].items():
        alpha = sum(TILE_OF[algorithm]) - 1 if algorithm in TILE_OF else "-"
        baseline = max(errors[label]["im2col"].values())
        rows.append((label, shape(layer.input), algorithm, alpha, *(f"{e[k]:.1e}" for k in ("y", "gx", "gW")),
                     f"{max(e.values()) / baseline:.0f}x"))
print(common.table(rows, ("layer", "input", "float32 algorithm", "tile", "y", "gx", "gW", "worst vs im2col")))
for algorithm in ("im2col", *TILE_OF):
    worst = [max(e[algorithm].values()) for e in errors.values() if algorithm in e]
    if worst:
        print(f"{algorithm}: worst of y, gx, gW {min(worst):.1e} to {max(worst):.1e} over {len(worst)} layer(s)")
for label, e in errors.items():
    if "F(2x2,3x3)" in e:  # the larger tile, the larger error, on every 3x3 layer
        assert max(e["F(4x4,3x3)"].values()) > max(e["F(2x2,3x3)"].values()), (label, e)
lesson.record(float32_error=errors)  # keys: float32_error[layer][algorithm] = {y, gx, gW} max relative errors

# %% [markdown]
# In the default run of lessons/README.md, F(2x2, 3x3) stays at im2col's own float32 error (6-9e-7
# against 4.5-9.6e-7), while the 6x6 tiles of F(4x4, 3x3) and F(2x2, 5x5) reach 0.3-1.8e-5 and the
# 8x8 tiles of F(4x4, 5x5) 0.6-1.0e-5, up to 25 times im2col's, the 9x9 tiles of F(5x5, 5x5)
# 2.3-5.1e-5, up to 70 times (the tolerances of tests/test_winograd.py are set from such
# measurements).
#
# Why: B^T is the inverse of the evaluation matrix at the points, and a larger tile needs more
# points, farther apart (0, +-1, +-2, infinity for alpha = 6): the matrices get larger entries and
# fractions such as 1/24, and rounding errors are amplified by their condition number. The 8x8 tiles
# add +-1/2 rather than +-3, whose powers (up to 3^7) would grow the entries far more. The 9x9 tiles
# need eight finite points: a search by the float32 error (`cook_toom.POINTS`) took +-1/2, +-4/3
# and -3, not +-2; their evaluation matrix has a condition number of about 102,000 (the 8x8 tiles'
# 1,900), and their error is 4-5 times the 8x8 tiles'.

# %%
for alpha in sorted(winograd.POINTS):
    evaluation = np.array(winograd.evaluation(winograd.POINTS[alpha], alpha), dtype=np.float64)
    print(f"tile {alpha}x{alpha}, points {winograd.POINTS[alpha]}: condition number of the evaluation matrix "
          f"{np.linalg.cond(evaluation):.1f}; largest entry of A^T, G, B^T of F({alpha - 2}, 3): "
          + ", ".join(f"{np.abs(t).max():g}" for t in winograd.cook_toom(alpha - 2, 3)))
show("B^T of F(4, 3)", winograd.cook_toom(4, 3)[2])

# %% [markdown]
# ## 4. Measured speed: where Winograd wins, and where it loses
#
# Forward and backward of one layer, float32, im2col against each tile that fits, in interleaved
# rounds in one process (im2col, F(2x2), F(4x4), im2col, ...: a busy machine's noise falls on all
# alike), the first round dropped, medians reported (`bench.interleaved`). The first layer of a
# network computes no input gradient (the images need none). **These timings are of the run that
# printed them**, on whatever else that machine was doing; the table in lessons/README.md was
# measured beside other jobs. Then what `winograd.choose("auto", ...)` picks for the same layer.

# %%
SPEED = [  # (network, layer, batch): the batches make each layer a fraction of a second on one core
    ("AlexNet", "conv3", 16), ("AlexNet", "conv4", 16), ("AlexNet", "conv5", 16),
    ("AlexNet-CIFAR", "conv3", 128), ("AlexNet-CIFAR", "conv4", 128), ("AlexNet-CIFAR", "conv5", 128),
    ("VGG-16", "conv3_1", 4), ("VGG-16", "conv4_1", 8), ("VGG-16", "conv5_1", 16),
    # the strided and 5x5 layers, and where Winograd loses or cannot run at all
    ("AlexNet", "conv1", 16), ("VGG-C", "conv3_3", 4), ("VGG-16", "conv1_1", 2),
    ("AlexNet", "conv2", 16), ("AlexNet-CIFAR", "conv2", 128),
    ("four-layer-CNN", "conv2", 128), ("four-layer-CNN", "conv3", 128),  # 15x15 and 7x7 maps
]
warmup, repeat = lesson.pick(quick=(0, 1), default=(1, 5))
# the pause lets spinning BLAS threads go to sleep between rounds; one thread has none to wait for
pause = 0.0 if bench.blas_threads() == 1 else bench.pause_for(lesson.device)
measure = bench.clock(lesson.device)
CLEAR_GAP = 1.3  # a speed ratio beyond which the faster algorithm is taken to be clearly faster


def one_round(layer, m, x, w, gy):
    """One timed forward and backward of ``layer`` by ``m``, for ``bench.interleaved``."""
    def timed():
        x.grad = w.grad = None  # backward adds to .grad: every round starts from none
        forward_ms, y = measure(lambda: run(layer, m, x, w))
        backward_ms, _ = measure(lambda: y.backward(gy))
        return {"forward": forward_ms, "backward": backward_ms}
    return timed


speed, rows, refused = {}, [], []
for network, name, batch in lesson.progress(SPEED, "timing layers"):
    layer, N = NETWORKS[network][name], lesson.pick(quick=1, default=batch)
    label, c = f"{network} {name}", layer.conv
    x_shape = (N, *layer.input)
    auto = winograd.choose("auto", x_shape, c.weight.shape, c.stride, c.padding, c.groups)
    entry = {"x": x_shape, "w": c.weight.shape, "auto": None if auto is None else tile_name(auto, strided(layer)[1])}
    if refusal(layer):
        speed[label] = dict(entry, refused=refusal(layer))
        refused.append(f"{label} ({shape(x_shape)}, {filters(c)}): no Winograd, {refusal(layer)}")
        continue
    x_data, w_data, gy_data = (a.astype(np.float32) for a in layer_inputs(layer, N, rng))
    x = ta.tensor(x_data, device=lesson.device, requires_grad=not layer.first)
    w = ta.tensor(w_data, device=lesson.device, requires_grad=True)
    gy = ta.tensor(gy_data, device=lesson.device)
    algorithms = {"im2col": None} | {tile_name(m, r): m for m, r in tiles_for(layer)}
    ms = bench.interleaved({k: one_round(layer, m, x, w, gy) for k, m in algorithms.items()}, warmup, repeat,
                           pause=pause)
    total = {k: v["forward"] + v["backward"] for k, v in ms.items()}
    speedup = {k: total["im2col"] / t for k, t in total.items() if k != "im2col"}
    best = max(speedup, key=speedup.get)  # the fastest tile
    faster = best if speedup[best] >= CLEAR_GAP else "im2col" if speedup[best] <= 1 / CLEAR_GAP else None
    # right when it takes Winograd where a tile is clearly faster and im2col where im2col is
    agrees = None if faster is None else (entry["auto"] is None) == (faster == "im2col")
    speed[label] = dict(entry, ms=ms, speedup=speedup, faster=faster, auto_agrees=agrees)
    rows.append((label, shape(x_shape), f"{total['im2col']:.0f}",
                 *(f"{total[k]:.0f} ({speedup[k]:.2f}x)" if k in total else "-" for k in TILE_OF),
                 entry["auto"] or "im2col",
                 {None: f"within {CLEAR_GAP}x", True: "yes", False: "NO"}[agrees]))
    lesson.record(speed=speed)
print(common.table(rows, ("layer", "input", "im2col ms", *(f"{k} ms (speedup)" for k in TILE_OF),
                          "auto picks", "auto right")))
print("\n".join(refused))
judged = [s for s in speed.values() if s.get("faster")]
print(f"where one algorithm is clearly faster (over {CLEAR_GAP}x), choose('auto') picks it on "
      f"{sum(bool(s['auto_agrees']) for s in judged)} of {len(judged)} layers")
lesson.record(speed=speed, speed_settings={"warmup": warmup, "repeat": repeat, "clear_gap": CLEAR_GAP,
                                           "blas_threads": bench.blas_threads(), "pause_s": pause})
# keys: speed[layer] = {x, w, auto (choose's tile or None), and either refused (the engine's reason) or
# ms[algorithm] = {forward, backward} medians, speedup[tile] (im2col time / its time), faster (the
# algorithm over clear_gap faster, or None), auto_agrees}; speed_settings = {warmup, repeat, clear_gap,
# blas_threads, pause_s}

# %% [markdown]
# Winograd wins where the GEMMs dominate: many channels (U @ V is then a large matrix product, and the
# transforms are a small part of the work), maps that fill their tiles, and batches large enough that
# each thread's part has many tiles. It loses where the transforms dominate: 3 input channels (VGG's
# conv1_1, the four-layer CNN's conv1: the transforms move alpha^2 / m^2 times the data for 27 or 75
# products per output), and 5x5 filters on 6x6 tiles for 2x2 outputs, which move 9 times the data
# (F(4x4, 5x5)'s 8x8 tiles move 4 times). `choose` takes Winograd for stride-1 3x3 layers with at
# least 128 channels in and out per group, on F(4x4, 3x3) or F(5x5, 3x3), whichever tiles cover the
# map with fewer products, the larger only where it saves more than a tenth of them, for it errs
# more (`tile_side`: 13x13 and 14x14 maps take the 7x7 tiles, 8x8 maps the 6x6 ones), F(4x4, 5x5) or
# F(5x5, 5x5), by the same rule, for stride-1 5x5 layers of 32 to 128 channels per group (the 9x9
# tiles on the four-layer CNN's 15x15 conv2, 29% fewer products; the 8x8 on its conv3, on
# AlexNet-CIFAR's conv2 and on AlexNet's 27x27 conv2, where the 9x9 save 7%), and the
# space-to-depth for AlexNet's conv1 (3x3 filters over 48 channels), wherever the tiles are at least
# 5/8 used: AlexNet's 13x13 maps are in, 6x6 maps (36 of 64) are not. The measurements behind the rule,
# training steps with and without it, are in `choose`'s docstring.
# Where a run measures a clear gain that `choose` does not take, the table says NO.
#
# The figure: left, how many times fewer multiplications the best tile needs in each layer of AlexNet
# and VGG-16; middle, the measured speedup of each tile on each timed layer (the ring marks what
# `choose` picks); right, the float32 error of each algorithm on each layer.

# %%
fig, (counted, timed, accuracy) = common.plt.subplots(1, 3, figsize=(18, 6.5), layout="constrained",
                                                     gridspec_kw={"width_ratios": [1, 1.2, 1]})
labels, ratios = [], []
for network in ("AlexNet", "VGG-16"):
    for name, c in counts[network].items():
        if name != "total":
            labels.append(f"{network} {name}")
            ratios.append(c["direct"] / min(c.values()))
pos = np.arange(len(labels))
counted.barh(pos, ratios, color=["C0" if label.startswith("AlexNet") else "C1" for label in labels])
ideal = {tile_name(m, r): (m * r) ** 2 / (m + r - 1) ** 2 for m, r in TILES}  # whole tiles only
for value in ideal.values():
    counted.axvline(value, color="gray", ls=":", lw=1)
top = counted.secondary_xaxis("top")
top.set_xticks(list(ideal.values()), [f"{k} ideal" for k in ideal], fontsize=7, rotation=30, ha="left")
counted.set_yticks(pos, labels, fontsize=8)
counted.invert_yaxis()
counted.set(xlabel="times fewer multiplications\n(best tile, remainder tiles counted)",
            title="multiplications: direct / Winograd")

timed_layers = [k for k, s in speed.items() if "speedup" in s]
pos = np.arange(len(timed_layers))
for i, (m, r) in enumerate(TILES):
    values = [speed[k]["speedup"].get(tile_name(m, r), np.nan) for k in timed_layers]
    same = [t for t in TILES if t[1] == r]  # a layer has the tiles of one filter size: centre them
    offset = (same.index((m, r)) - (len(same) - 1) / 2) * 0.27
    timed.barh(pos + offset, values, 0.27, label=tile_name(m, r), color=f"C{i + 2}")
    for y, k in zip(pos + offset, timed_layers):
        if speed[k]["auto"] == tile_name(m, r):
            timed.plot(speed[k]["speedup"][tile_name(m, r)], y, "o", mfc="none", mec="k", ms=7)
timed.axvline(1, color="k", lw=1)
timed.set_xscale("log")
low, high = timed.get_xlim()
timed.set_xticks([v for v in (0.1, 0.2, 0.5, 1, 1.5, 2, 3, 5) if low <= v <= high])
timed.set_xticklabels([f"{v:g}" for v in timed.get_xticks()])  # 0.5, not 5 x 10^-1
timed.xaxis.set_minor_formatter(NullFormatter())
timed.set_yticks(pos, [f"{k} (N={speed[k]['x'][0]})" for k in timed_layers], fontsize=8)
timed.invert_yaxis()
timed.set(xlabel="im2col time / Winograd time, forward + backward\n(log scale; > 1: Winograd faster)",
          title=f"measured speedup, median of {repeat} round(s) ({lesson.mode} run)")
timed.legend(fontsize=8, loc="upper right")

for label, e in errors.items():
    tiles = [1] + [sum(TILE_OF[k]) - 1 for k in e if k in TILE_OF]  # im2col drawn at 1: no tile
    r = NETWORKS[label.split()[0]][label.split()[1]].conv.kernel_size[0]
    accuracy.plot(tiles, [max(v.values()) for v in e.values()], "-o" if r == 3 else "--s", ms=5,
                  label=f"{label} ({r}x{r})")
accuracy.set_yscale("log")
accuracy.set_xticks([1] + sorted(winograd.POINTS), ["im2col"] + [f"{a}x{a}" for a in sorted(winograd.POINTS)])
tiles_of_side = {}
for name, (m, r) in TILE_OF.items():
    tiles_of_side.setdefault(m + r - 1, []).append(name)
sides = [f"{' and '.join(names)}: {a}x{a}" for a, names in sorted(tiles_of_side.items())]
accuracy.set(xlabel=f"tile ({'; '.join(sides[:3])};\n{'; '.join(sides[3:])})",
             ylabel="max relative error of y, gx, gW (float32 vs float64)", title="float32 error against the tile size")
accuracy.grid(alpha=0.3)
accuracy.legend(fontsize=7)
lesson.save(fig, "fast_convolution")

# %% [markdown]
# ## Exercises
#
# In `lessons/exercises/09_winograd.py` you write `winograd_tile`, the F(2x2, 3x3) output of one 4x4
# tile (B^T d B, G g G^T, their product and A^T . A), and `winograd_conv2d`, a whole stride-1 3x3
# layer by F(2x2, 3x3) with the remainder tiles of odd sizes. `tinyalex grade 09_winograd.py`
# checks them against the engine.

# %%
lesson.done()
