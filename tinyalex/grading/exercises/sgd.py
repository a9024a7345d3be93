"""Exercise 7: one step of the paper's SGD with momentum and weight decay (paper section 5)."""
from .. import solutions
from ..checks import Case, Check, Mistake, StudentError, close, compare_all, kind, on, rand
from . import Exercise, Stub

TEXT = """\
Exercise 7: one SGD step exactly as the paper writes it (section 5, "Details of learning").

    v_{i+1} = 0.9 v_i - 0.0005 eps w_i - eps dL/dw|_{w_i}
    w_{i+1} = w_i + v_{i+1}

momentum 0.9, weight decay 0.0005 and learning rate eps (0.01, divided by 10 when the validation error
stopped improving). Note where eps goes: the weight decay term is scaled by the learning rate too, and
the velocity v already carries the minus sign and eps (PyTorch keeps v = 0.9 v + g instead and
subtracts eps v: the same steps at a fixed eps, but a different v).
"""

STEP_DOC = """\
One update: w, g = dL/dw, v (the same shape) -> (new w, new v); the inputs are not to be changed.

lr is eps; momentum and weight_decay default to the paper's 0.9 and 0.0005.
"""

SETTINGS = [dict(lr=0.01, momentum=0.9, weight_decay=5e-4), dict(lr=0.1, momentum=0.9, weight_decay=0.1),
            dict(lr=0.001, momentum=0.5, weight_decay=0.01), dict(lr=0.3, momentum=0.0, weight_decay=0.2)]


def cases(rng, n_random=8):
    out = []
    for number in range(n_random):
        shape = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 4))))
        options = SETTINGS[number % len(SETTINGS)]
        out.append(Case(f"w {shape}, " + ", ".join(f"{k}={v:g}" for k, v in options.items()),
                        dict(w=rand(rng, *shape), g=rand(rng, *shape), v=rand(rng, *shape), options=options),
                        frozenset(), number))
    return out


def run_step(student, case, device):
    inputs = [case.args[k] for k in "wgv"]
    got = student.sgd_step(*on(device, *inputs), **case.args["options"])
    if not isinstance(got, tuple):
        raise StudentError(f"sgd_step should return (w, v), got {kind(got)}")
    return compare_all(got, solutions.sgd_step(*on(device, *inputs), **case.args["options"]), ("w", "v"))


def _gives(rule):
    """A detector: the answer is (w, v) = rule(w, g, v, lr, momentum, weight_decay)."""
    def detect(got, case, device):
        w_new, v_new = rule(*(case.args[k] for k in "wgv"), **case.args["options"])
        return close(got["w"], w_new) and close(got["v"], v_new)
    return detect


def _paper_velocity(w, g, v, lr, momentum, weight_decay):
    return momentum * v - weight_decay * lr * w - lr * g


def _decay_without_lr(w, g, v, lr, momentum, weight_decay):
    v = momentum * v - weight_decay * w - lr * g
    return w + v, v


def _pytorch_buffer(w, g, v, lr, momentum, weight_decay):
    v = momentum * v + g + weight_decay * w
    return w - lr * v, v


def _old_velocity(w, g, v, lr, momentum, weight_decay):
    return w + v, _paper_velocity(w, g, v, lr, momentum, weight_decay)


def _minus_velocity(w, g, v, lr, momentum, weight_decay):
    v = _paper_velocity(w, g, v, lr, momentum, weight_decay)
    return w - v, v


MISTAKES = (Mistake("weight decay must be multiplied by the learning rate: v = 0.9 v - 0.0005 eps w - eps g",
                    _gives(_decay_without_lr)),
            Mistake("that is PyTorch's buffer v = 0.9 v + g + wd w with w -= eps v; the paper's v is "
                    "v = 0.9 v - wd eps w - eps g and w += v", _gives(_pytorch_buffer)),
            Mistake("update w with the NEW velocity v_{i+1}, not the old one", _gives(_old_velocity)),
            Mistake("the paper's v already carries the minus sign: w = w + v", _gives(_minus_velocity)))

EXERCISE = Exercise(
    name="sgd", number=7, title="SGD with momentum and weight decay", text=TEXT,
    stubs=(Stub("sgd_step", "(w, g, v, lr, momentum=0.9, weight_decay=5e-4)", STEP_DOC),),
    checks=(Check("one SGD step follows the paper's update rule (section 5)", cases, run_step, mistakes=MISTAKES),),
)
