"""Exercise 8: receptive fields and parameter counts of VGG networks (VGG paper sections 2.1-2.3)."""
from .. import solutions
from ..checks import Case, Check, Mistake, Pattern, compare
from . import Exercise, Stub

TEXT = """\
Exercise 8: VGG's receptive fields and parameter counts (Simonyan & Zisserman 2014, sections 2.1-2.3).

VGG uses only 3x3 convolutions (stride 1, padding 1: the size is kept) and 2x2 max pooling at stride 2
(the size halves), then three fully connected layers 4096-4096-1000. Section 2.3: "a stack of two 3x3
conv. layers (without spatial pooling in between) has an effective receptive field of 5x5; three such
layers have a 7x7 effective receptive field", with fewer parameters than one 7x7 layer:
3 (3^2 C^2) = 27 C^2 against 7^2 C^2 = 49 C^2. Table 2 gives the sizes of the networks A to E: 133,
133, 134, 138 and 144 million parameters.
"""

RF_DOC = """\
Receptive field, in input pixels along one side, of one output unit of a stack of layers.

layers: a list of (kernel_size, stride) from the input up, e.g. [(3, 1), (3, 1), (3, 1)] -> 7 and
[(11, 4), (3, 2)] (AlexNet's conv1 and pool1) -> 19. Padding does not change it.
Hint: going down one layer of kernel k, a window of r units becomes (r - 1) * s + k units, where s is
that layer's stride.
"""

COUNT_DOC = """\
Number of learnable parameters (weights and biases) of a VGG network.

cfg lists the layers in order, as in the paper's Table 1: an int c is a 3x3 convolution with c output
channels (padding 1), a pair (c, k) a k x k convolution (padding k // 2; configuration C has 1x1 ones),
"M" a 2x2 max pooling at stride 2 (the size halves, rounding down). After the last layer the
(channels x size x size) maps feed fully connected layers of widths fc, then num_classes outputs.
Example: cfg [64, "M"], in_channels 3, image_size 224, fc (4096, 4096), 1000 classes:
(3*9*64 + 64) + (64*112*112*4096 + 4096) + (4096*4096 + 4096) + (4096*1000 + 1000).
"""

M = "M"
TABLE1 = {  # VGG Table 1, configurations A to E (A-LRN adds LRN, which has no parameters)
    "A": [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "B": [64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "C": [64, 64, M, 128, 128, M, 256, 256, (256, 1), M, 512, 512, (512, 1), M, 512, 512, (512, 1), M],
    "D": [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M],
    "E": [64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M],
}
TABLE2_MILLIONS = {"A": 133, "B": 133, "C": 134, "D": 138, "E": 144}


def stack_cases(rng, n_random=10):
    fixed = [[(3, 1)] * 2, [(3, 1)] * 3, [(7, 1)], [(11, 4), (3, 2)], [(3, 1), (3, 1), (2, 2), (3, 1)]]
    layer = lambda: (int(rng.choice([1, 2, 3, 5, 7])), int(rng.integers(1, 3)))  # (kernel, stride)
    stacks = fixed + [[layer() for _ in range(int(rng.integers(1, 6)))] for _ in range(n_random)]
    # the last layer's stride moves no window below it
    strided = lambda s: frozenset({"strided"} if any(st > 1 for _, st in s[:-1]) else ())
    return [Case(f"layers {s}", dict(layers=s), strided(s), number) for number, s in enumerate(stacks)]


def run_receptive_field(student, case, device):
    layers = case.args["layers"]
    want = solutions.receptive_field(layers)
    return [compare("receptive field", student.receptive_field(list(layers)), want, rtol=0, atol=0.5)]


def config_cases(rng, n_random=8):
    out = []
    for number in range(n_random):
        cfg = [M if rng.random() < 0.3 else (int(rng.integers(1, 17)) if rng.random() < 0.8
                                             else (int(rng.integers(1, 9)), int(rng.choice([1, 3, 5]))))
               for _ in range(int(rng.integers(1, 6)))]
        options = dict(in_channels=int(rng.integers(1, 4)), image_size=int(rng.integers(8, 33)),
                       fc=tuple(int(w) for w in rng.integers(1, 20, size=int(rng.integers(0, 3)))),
                       num_classes=int(rng.integers(2, 11)))
        out.append(Case(f"cfg {cfg}, " + ", ".join(f"{k}={v}" for k, v in options.items()),
                        dict(cfg=cfg, options=options), frozenset(), number))
    return out


def run_count(student, case, device):
    cfg, options = case.args["cfg"], case.args["options"]
    return [compare("parameters", student.vgg_parameter_count(list(cfg), **options),
                    solutions.vgg_parameter_count(cfg, **options), rtol=0, atol=0.5)]


def table2_cases(rng):
    return [Case(f"configuration {name} (224x224 input, 1000 classes)", dict(name=name), frozenset(), number)
            for number, name in enumerate(TABLE1)]


def run_table2(student, case, device):
    count = student.vgg_parameter_count(list(TABLE1[case.args["name"]]))
    return [compare("millions of parameters", round(float(count) / 1e6), TABLE2_MILLIONS[case.args["name"]],
                    rtol=0, atol=0.5)]


def _without_biases(got, case, device):
    cfg, options = case.args["cfg"], case.args["options"]
    conv_biases = sum(c[0] if isinstance(c, tuple) else c for c in cfg if c != M)
    biases = conv_biases + sum(options["fc"]) + options["num_classes"]
    return got["parameters"] == solutions.vgg_parameter_count(cfg, **options) - biases


STRIDES = Pattern("strided", "only stacks with strides fail: below a layer of stride s, one step of the layers "
                             "above is s input pixels, so r becomes (r - 1) * s + k")
BIASES = Mistake("count the biases too: one per output channel of every convolution and one per unit of every "
                 "fully connected layer", _without_biases)

EXERCISE = Exercise(
    name="vgg", number=8, title="VGG receptive fields and parameter counts", text=TEXT,
    stubs=(Stub("receptive_field", "(layers)", RF_DOC),
           Stub("vgg_parameter_count", "(cfg, in_channels=3, image_size=224, fc=(4096, 4096), num_classes=1000)",
                COUNT_DOC)),
    checks=(Check("receptive fields (three 3x3 layers see 7x7, VGG section 2.3), measured by the engine",
                  stack_cases, run_receptive_field, patterns=(STRIDES,)),
            Check("parameter counts match the engine's layers", config_cases, run_count, mistakes=(BIASES,)),
            Check("VGG Table 2: A-E have 133, 133, 134, 138, 144 million parameters", table2_cases, run_table2)),
)
