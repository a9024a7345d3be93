# %% [markdown]
# # Lesson 01: gradient checking
#
# Everything the AlexNet paper trains (sections 3 to 5) rests on one assumption: that back-propagation
# computes the true gradient of the loss. Each operation in tinyalex has a hand-written backward, so each
# could be wrong. A wrong gradient rarely crashes; the network just learns worse, and no one notices.
# The cure is old and cheap: compare backward with derivatives measured from the forward pass alone.
#
# **The equation.** For a scalar function phi of x, the central difference
#
#     phi'(x) ~ (phi(x + eps) - phi(x - eps)) / (2 eps)          truncation error O(eps^2)
#
# beats the one-sided (forward) difference (phi(x + eps) - phi(x)) / eps, whose error is O(eps). But
# eps cannot shrink for ever: phi(x + eps) and phi(x - eps) share their leading digits, and the
# subtraction throws them away. Round-off costs about machine-epsilon / eps, so
#
#     error(eps) ~ C eps^2 + u / eps,        u = 1e-16 (float64) or 6e-8 (float32).
#
# In float64 with eps = 1e-6 about ten digits survive; in float32 round-off alone is as large as the
# derivative. That is why `ta.gradcheck` (tinyalex/gradcheck.py) insists on float64 inputs.
#
# For a layer y = f(x) with many outputs, `ta.gradcheck` draws a random v of y's shape and compares
# backward's vector-Jacobian product v^T (dy/dx) with central differences of phi(x) = <v, f(x)>: one
# backward pass tests every output at once.

# %%
import numpy as np

import common
import tinyalex as ta
from tinyalex import functional as F
from tinyalex.gradcheck import gradcheck_report as report

lesson = common.Lesson("01", "gradient checking", "sections 3-5 (every backward pass)",
                       runs={"quick": ("the eps sweep and a gradient check of every layer on small shapes", "5 s"),
                             "default": ("the same on larger shapes, plus the paper's conv1 at full size "
                                         "in fast (directional) mode", "30 s")})
rng = np.random.default_rng(lesson.args.seed)


def f64(*shape, requires_grad=True, low=None):
    """A random float64 tensor; ``low`` keeps every |value| above it (away from kinks at 0)."""
    a = rng.standard_normal(shape)
    if low is not None:
        a = np.sign(a) * (low + np.abs(a))
    return ta.tensor(a, dtype="float64", requires_grad=requires_grad, device=lesson.device)


# %% [markdown]
# ## 1. How small should eps be? Forward vs central differences, float32 vs float64
#
# We differentiate tanh at x = 0.5 (`F.tanh`, tinyalex/functional/activation.py); backward gives the
# exact value 1 - tanh(x)^2, so we can measure each estimate's error for a sweep of eps.

# %%
x0 = 0.5
exact = 1 - np.tanh(x0) ** 2
epsilons = np.logspace(-12, -1, 45)


def tanh_values(a):
    return F.tanh(ta.tensor(a)).numpy()


def difference_errors(dtype, central):
    """|estimate - exact| for every eps, the whole estimate computed in ``dtype`` as a check would."""
    x, e = np.dtype(dtype).type(x0), epsilons.astype(dtype)
    hi = tanh_values(x + e)
    estimate = (hi - tanh_values(x - e)) / (2 * e) if central else (hi - tanh_values(np.full_like(e, x))) / e
    return np.abs(estimate.astype(np.float64) - exact)


errors = {(dtype, central): difference_errors(dtype, central)
          for dtype in ("float32", "float64") for central in (False, True)}

x = ta.tensor([x0], dtype="float64", requires_grad=True)
F.tanh(x).backward(np.ones(1))
print(f"backward of tanh at {x0}: {x.grad[0]:.15f}   exact 1 - tanh^2: {exact:.15f}")
at_1e6 = np.argmin(np.abs(epsilons - 1e-6))
print(f"{'':>22}{'best eps':>12}{'smallest error':>18}{'error at eps=1e-6':>20}")
for (dtype, central), err in errors.items():
    best = np.argmin(err)
    print(f"{dtype + (' central' if central else ' forward'):>22}{epsilons[best]:>12.1e}{err[best]:>18.2e}{err[at_1e6]:>20.2e}")

# %% [markdown]
# The central difference in float64 reaches about 1e-12, at eps near 1e-6. In float32 the best any
# eps can do is about 1e-6 (at eps ~ 1e-3, where truncation already counts), and at eps = 1e-6 the
# error is near 1e-2: a check with a relative tolerance of 1e-3 could not tell a right backward from a
# slightly wrong one. Hence float64 and eps = 1e-6.
#
# ## 2. Kinks: where the check fails although backward is right
#
# ReLU (paper section 3.1) has no derivative at 0, and max pooling none where two values in a window
# tie. A central difference straddling a kink averages two slopes; backward picks one. The check fails,
# and the fault is in the test, not the code.

# %%
near_zero = ta.tensor(rng.uniform(-1e-7, 1e-7, size=(4, 5)), dtype="float64", requires_grad=True)
print("ReLU with inputs within 1e-7 of the kink:\n", report(F.relu, near_zero))
print("ReLU with inputs kept 0.1 away from 0:\n", report(F.relu, f64(4, 5, low=0.1)))

tied = ta.tensor(np.ones((1, 1, 4, 4)), dtype="float64", requires_grad=True)
print("3x3/2 max pooling of a constant image (every window a tie):\n", report(lambda t: F.max_pool2d(t, 3, 2), tied))
tie_free = ta.tensor(rng.permutation(16).reshape(1, 1, 4, 4) / 16.0, dtype="float64", requires_grad=True)
print("the same on distinct values:\n", report(lambda t: F.max_pool2d(t, 3, 2), tie_free))

# %% [markdown]
# ## 3. Check every layer of AlexNet
#
# Each op below is the one the paper's network uses, checked in float64 on small shapes with the
# awkward cases on purpose: stride > 1 with overlapping windows, padding, two groups (the two columns),
# odd sizes, batch 1, LRN with alpha = 1 and k = 1 (with the paper's alpha = 1e-4 a wrong window sum
# would hide inside the tolerance), dropout with a fixed mask in both modes.

# %%
s = lesson.pick(quick=1, default=2)  # size multiplier
N, H = 2, 7 * s
labels = ta.tensor(rng.integers(0, 10, size=N), device=lesson.device)
mask = ta.tensor((rng.random((N, 6 * s)) > 0.5).astype(np.float64), device=lesson.device)
layers = [
    ("conv2d 3x3/2 pad 1 groups 2", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
     (f64(N, 4, H, H), f64(6, 2, 3, 3), f64(6))),
    ("conv2d 11x11/4 (conv1's kernel)", lambda x, w: F.conv2d(x, w, stride=4), (f64(1, 3, 15 + 4 * s, 15 + 4 * s), f64(2, 3, 11, 11))),
    ("relu", F.relu, (f64(N, 3, H, H, low=0.05),)),
    ("tanh", F.tanh, (f64(N, 3, H, H),)),
    ("lrn n=5 alpha=1 k=1 beta=0.75", lambda x: F.lrn(x, n=5, k=1.0, alpha=1.0, beta=0.75), (f64(N, 7, 3, 3),)),
    ("max_pool2d 3x3/2 (overlapping)", lambda x: F.max_pool2d(x, 3, 2),
     (ta.tensor(rng.permutation(N * 3 * H * H).reshape(N, 3, H, H) / (N * 3.0 * H * H), dtype="float64",
                requires_grad=True, device=lesson.device),)),
    ("avg_pool2d 3x3/2", lambda x: F.avg_pool2d(x, 3, 2), (f64(N, 3, H, H),)),
    ("linear", F.linear, (f64(N, 6 * s), f64(5, 6 * s), f64(5))),
    ("dropout p=0.5 inverted, fixed mask", lambda x: F.dropout(x, 0.5, mask=mask), (f64(N, 6 * s),)),
    ("dropout p=0.5 paper mode", lambda x: F.dropout(x, 0.5, mode="paper", mask=mask), (f64(N, 6 * s),)),
    ("softmax_cross_entropy", lambda z: F.softmax_cross_entropy(z, labels), (f64(N, 10),)),
]
rows, worst = [], {}
for name, fn, inputs in lesson.progress(layers, "gradcheck"):
    r = report(fn, *inputs)
    worst[name] = max(i.max_rel_error for i in r.inputs)
    rows.append((name, " ".join(str(i.shape) for i in r.inputs), f"{max(i.max_abs_error for i in r.inputs):.1e}",
                 f"{worst[name]:.1e}", "ok" if r.passed else "FAILED"))
print(common.table(rows, ("op", "checked inputs", "max abs err", "max rel err", "")))
assert all(row[-1] == "ok" for row in rows), "a layer failed its gradient check"

# %% [markdown]
# For a big input, checking every entry costs two forward passes per entry. The fast mode compares
# directional derivatives v^T J u for a few random directions u instead: here the paper's conv1 on a
# full 227x227 image (96 kernels of 11x11x3, stride 4), 4 directions, 8 forward passes.

# %%
if lesson.mode != "quick":
    x = f64(1, 3, 227, 227)
    w = ta.tensor(rng.standard_normal((96, 3, 11, 11)) * 0.01, dtype="float64", requires_grad=True)
    print("conv1 at full size, fast mode:\n", report(lambda x, w: F.conv2d(x, w, stride=4), x, w, fast_mode=True))

# %% [markdown]
# ## 4. A planted bug, caught
#
# A classic slip: tanh's derivative is 1 - y^2 with y = tanh(x) the *output*; writing 1 - x^2 with the
# input looks just as plausible. Here is that wrong op, written as any user-defined `ta.Function`:

# %%
class TanhWrongBackward(ta.Function):
    def forward(self, x):
        self.save_for_backward(x=x)
        return ta.backend.xp(x).tanh(x)  # NumPy or CuPy, whichever holds x

    def backward(self, gy):
        return (gy * (1 - self.saved.x ** 2),)  # the bug: should be 1 - tanh(x)^2


bug = report(lambda t: TanhWrongBackward()(t), f64(3, 4))
print(bug)
assert not bug.passed, "the planted bug went unnoticed"

# %% [markdown]
# The report names the input, the worst entry, and backward's value next to the measured one — where
# to look. The figure sums it up: left, the eps trade-off; right, every layer's worst relative error.

# %%
fig, (left, right) = common.plt.subplots(1, 2, figsize=(12, 4.5))
for (dtype, central), err in errors.items():
    left.loglog(epsilons, err, ("-" if central else "--"), color="C0" if dtype == "float64" else "C3",
                label=f"{dtype}, {'central' if central else 'forward'} difference")
left.axvline(1e-6, color="grey", lw=0.8, ls=":")
left.text(1.2e-6, 1e-13, "eps = 1e-6\n(gradcheck)", color="grey", fontsize=8)
left.set(xlabel="step eps", ylabel="|estimate - exact derivative|", ylim=(1e-14, 1),
         title="d tanh/dx at 0.5: truncation (right) vs round-off (left)")
left.legend(fontsize=8)
names = list(worst) + ["planted bug: tanh'=1-x^2"]
values = [max(v, 1e-16) for v in worst.values()] + [max(i.max_rel_error for i in bug.inputs)]
right.barh(names, values, color=["C2"] * len(worst) + ["C3"])
right.axvline(1e-3, color="k", lw=0.8, ls="--")
right.text(1.1e-3, -0.6, "rtol 1e-3", fontsize=8)
right.set(xscale="log", xlabel="max relative error, backward vs central differences (float64)",
          title="every layer passes; the planted bug does not")
right.invert_yaxis()
right.tick_params(axis="y", labelsize=8)
lesson.save(fig, "gradient_checking")
lesson.done()
