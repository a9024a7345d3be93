"""The exercises, in course order. Each module defines ``EXERCISE``: the task text the stub file is
written from, and the checks the grader runs."""
import dataclasses
import importlib

NAMES = ("im2col", "conv2d", "max_pool", "lrn", "dropout", "softmax_cross_entropy", "sgd", "vgg", "winograd")


@dataclasses.dataclass
class Stub:
    """One function the student writes: its signature (``"(x, KH, KW)"``) and its docstring."""

    name: str
    signature: str
    doc: str


@dataclasses.dataclass
class Exercise:
    name: str
    number: int
    title: str
    text: str  # the stub file's module docstring: the task, the paper's rule, how to grade it
    stubs: tuple
    checks: tuple

    @property
    def file_name(self):
        return f"{self.number:02d}_{self.name}.py"

    @property
    def functions(self):
        return tuple(s.name for s in self.stubs)


def get(name):
    """The exercise called ``name`` (a ValueError lists the names otherwise)."""
    if name not in NAMES:
        raise ValueError(f"grade: unknown exercise {name!r}; expected one of {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name}").EXERCISE


def all_exercises():
    return [get(n) for n in NAMES]
