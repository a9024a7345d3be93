"""What every lesson shares: its options, the opening banner, progress bars, data and saved figures.

A lesson starts with::

    lesson = common.Lesson("02", "ReLU vs tanh", "section 3.1, Figure 1",
                           runs={"quick": ("two tiny CNNs, 2 epochs", "10 s"),
                                 "default": ("two four-layer CNNs, 12 epochs", "4 min"),
                                 "data": ("the same on CIFAR-10", "20 min on CPU, 2 min on a GPU")})

which reads the command line, says what will run and how long it takes, and gives the lesson
``lesson.mode`` ("quick", "default" or "data"), ``lesson.device``, ``lesson.pick(quick=..., ...)``,
``lesson.datasets(...)``, ``lesson.train(...)``, ``lesson.sweep(...)``, ``lesson.progress(...)``,
``lesson.save(fig, name)``, ``lesson.show(path)`` (a figure ``viz`` wrote), ``lesson.record(...)``
and ``lesson.done()``.

Every lesson writes ``<out>/NN_results.json`` (atomically, again after each ``record``, so a long
run leaves its figures as it goes). Keys every lesson has: ``lesson``, ``title``, ``mode``,
``data`` (name), ``device``, ``seed``, ``argv``, ``seconds`` (null until ``done``), ``comparable``
(false for ``--quick``: far too short to compare anything) and ``trained``: every ``lesson.train`` run
by its name, with its ``lr``, per-epoch ``train_errors`` and ``test_errors`` and ``seconds``, updated
after each epoch; each lesson documents its own keys where it records them. ``table`` prints results; ``four_layer_cnn`` (``tinyalex.models``) is the small network of the
paper's CIFAR-10 experiments (lessons 02, 04, 05).

Options (every lesson):

    --quick          seconds, on the embedded synthetic data, CPU (the test suite runs this)
    (none)           the default: a few minutes on the CPU, on the embedded synthetic data
    --data PATH      a real data set (see ``tinyalex.data.load``), e.g. CIFAR-10; best with --device cuda
    --small          with --data: the default run's sizes, on a random part of the data set (a CPU run)
    --device DEV     cpu, cuda or cuda:N
    --out DIR        where figures go (default: lessons/out/)
    --seed N         the engine's random seed (default 0)

``$TINYALEX_LESSON_ARGS`` holds options read before the command line's: a notebook's only way to
give them (``TINYALEX_LESSON_ARGS=--quick jupyter lab``). A bad option ends the lesson at once with
one line and status 2; ``--help`` says what the lesson teaches and what each mode runs. In a Jupyter
kernel ``lesson.save`` also shows each figure inline.
"""
import argparse
import json
import os
import shlex
import sys
import textwrap
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures go to files; no window, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import tinyalex as ta  # noqa: E402
from tinyalex import viz  # noqa: E402
from tinyalex.checkpoint import atomic_write  # noqa: E402
from tinyalex.models import four_layer_cnn  # noqa: E402,F401  (lessons 02, 04, 05 build it as common.four_layer_cnn)

HERE = Path(__file__).resolve().parent
# how many binomial standard errors below chance a sweep's best must be (``Lesson.sweep``): at 3, a best of
# up to 7 rates at chance passes by luck less than once in a hundred sweeps
CHANCE_MARGIN = 3


ARGS_VARIABLE = "TINYALEX_LESSON_ARGS"  # a notebook has no command line: its options come from here


def parse_options(argv=None, heading="Run a tinyalex lesson as a script.", runs=None, prog=None):
    """The options of ``$TINYALEX_LESSON_ARGS`` (e.g. "--quick --out /tmp/l") followed by ``argv``
    (default: the command line; in a Jupyter kernel none, as its command line is the kernel's).

    ``heading`` and ``runs`` (see ``Lesson``) make ``--help`` say what the lesson teaches and what
    each mode runs. A mistake the user can make (an unknown option, ``--device cuda`` without a GPU,
    a missing or unreadable ``--data``, an ``--out`` that cannot be made) ends the process with one
    line on stderr and status 2, as the ``tinyalex`` command does; a lesson never starts half-way.
    """
    p = argparse.ArgumentParser(prog=prog, description=heading, epilog=_modes(runs),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="seconds, embedded synthetic data, CPU (for tests)")
    p.add_argument("--data", help="a data set for tinyalex.data.load: 'cifar10', a CIFAR-10 folder, "
                                  "or an image folder with train/ and test/")
    p.add_argument("--small", action="store_true",
                   help="with --data: the default run's sizes on a random part of the data set (fits a CPU)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--out", default=str(HERE / "out"), help="folder for figures (default lessons/out)")
    p.add_argument("--seed", type=int, default=0, help="the engine's random seed (default 0)")
    p.add_argument("--seeds", type=int, default=None,
                   help="how many seeds (--seed, --seed + 1, ...) an experiment over seeds runs (default: the "
                        "lesson's own for its mode; a rerun with fewer continues the runs already made)")
    command_line = ([] if in_notebook() else sys.argv[1:]) if argv is None else list(argv)
    args = p.parse_args(shlex.split(os.environ.get(ARGS_VARIABLE, "")) + command_line)
    if args.quick and args.data:
        p.error("--quick runs on the embedded data; leave out --data")
    if args.small and not args.data:
        p.error("--small shrinks a --data run; give --data too")
    try:
        if args.seeds is not None and args.seeds < 1:
            raise ValueError(f"--seeds must be 1 or more, got {args.seeds}")
        ta.backend.module_for(args.device)  # an unknown device, or no CuPy or GPU for "cuda"
        if args.data:  # the smaller split: a missing, unreadable or unknown data set fails here, in a second
            ta.data.load(args.data, train=False)
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"{p.prog}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    return args


def _modes(runs):
    """What each mode of a lesson runs and how long it takes, and how a notebook gives options (``--help``'s end)."""
    if runs is None:
        return None
    rows = [(option, "; about ".join(runs.get(mode, runs["default"])))
            for mode, option in (("quick", "--quick"), ("default", "(no option)"), ("data", "--data PATH"))]
    rows.append(("--small", "with --data: the default run's sizes and epochs, on a random part of the data set"))
    lines = ["what each mode runs:"] + [textwrap.fill(what, 100, initial_indent=f"  {option:<13}",
                                                      subsequent_indent=" " * 15) for option, what in rows]
    note = (f"As a Jupyter notebook (jupytext opens this file as one; see the README) a lesson takes its options "
            f"from ${ARGS_VARIABLE}, e.g. {ARGS_VARIABLE}=--quick; a command line's own come after them.")
    return "\n".join(lines + ["", textwrap.fill(note, 100)])


def in_notebook():
    """Whether this runs in a Jupyter kernel (IPython's kernel app), where figures are shown inline."""
    ipython = sys.modules.get("IPython")  # not imported otherwise: a script never loads IPython
    shell = ipython.get_ipython() if ipython else None
    return shell is not None and "IPKernelApp" in shell.config


class Lesson:
    """One run of a lesson: options, banner, the size knobs of each mode, data, figures, timing.

    ``runs`` maps each mode to (what it runs, how long it takes); modes left out fall back to
    "default", so a lesson that needs no data set simply runs its default experiment with --data.
    """

    def __init__(self, number, title, section, runs, argv=None):
        heading = f"Lesson {number}: {title} (paper {section})"
        self.args = parse_options(argv, heading, runs, prog=f"lesson {number}" if in_notebook() else None)
        self.number, self.title = number, title
        self.mode = "quick" if self.args.quick else "data" if self.args.data and not self.args.small else "default"
        self.data_name = Path(self.args.data).name.split(".")[0] if self.args.data else "synthetic"
        self.device = ta.backend.parse_device(self.args.device)
        self.out = Path(self.args.out)
        ta.manual_seed(self.args.seed)
        ta.backend.keep_freed_cpu_memory()  # a lesson is one short-lived process: faster CPU training
        self.started = time.perf_counter()
        what, how_long = runs.get(self.mode, runs["default"])
        print(f"=== {heading} ===")
        print(f"This will run {what}, on {self.device} ({self.mode} mode); it takes about {how_long}.")
        if self.args.small:
            print(f"--small: the default run's sizes and epochs, on images of {self.data_name} instead")
        print(f"Figures go to {self.out}{os.sep}")
        if self.mode == "quick":
            print("--quick only checks that the lesson runs: its numbers come from seconds of training and are "
                  "far too short to compare anything (see the default and --data runs)")
        self._prepared = {}  # (training set, pixel scale) -> its first transform, for loader()
        self.results_path = self.out / f"{number}_results.json"
        self.results = {"lesson": number, "title": title, "mode": self.mode, "data": self.data_name,
                        "device": str(self.device), "seed": self.args.seed, "argv": sys.argv[1:] if argv is None else argv,
                        "seconds": None, "comparable": self.mode != "quick"}
        self.record()

    def record(self, **values):
        """Add ``values`` (JSON-able) to this run's measured figures and rewrite ``NN_results.json``."""
        self.results.update(values)
        with atomic_write(self.results_path, "w") as f:
            json.dump(self.results, f, indent=1, default=_plain)
            f.write("\n")

    def pick(self, quick, default, data=None):
        """The setting for this run's mode (``data`` falls back to ``default``)."""
        return {"quick": quick, "default": default, "data": default if data is None else data}[self.mode]

    def seeds(self, quick, default, data=None):
        """The seeds of an experiment over seeds: ``--seeds`` of them if given, else as many as this
        mode's count (``pick``), counting up from ``--seed``."""
        n = self.args.seeds or self.pick(quick, default, data)
        return tuple(self.args.seed + i for i in range(n))

    def progress(self, iterable, desc, total=None):
        """A progress bar (on stderr; quiet when it is not a terminal, e.g. under the tests)."""
        return tqdm(iterable, desc=desc, total=total, leave=False, disable=None, dynamic_ncols=True)

    def datasets(self, n_train, n_test):
        """(train, test): the embedded synthetic shapes of these sizes, or ``--data``.

        ``--data`` gives its whole splits, or with ``--small`` a random ``n_train`` / ``n_test`` of them.
        """
        from tinyalex import data
        if not self.args.data:
            return (data.SyntheticShapes(n_train, seed=self.args.seed, train=True),
                    data.SyntheticShapes(n_test, seed=self.args.seed, train=False))
        splits = data.load(self.args.data, train=True), data.load(self.args.data, train=False)
        return splits if self.mode == "data" else tuple(subset(d, n, self.args.seed) for d, n in zip(splits, (n_train, n_test)))

    def save(self, fig, name):
        """Write ``fig`` as ``<out>/<number>_<name>.png``, atomically as every file tinyalex writes,
        and ``show`` it."""
        path = self.out / f"{self.number}_{name}.png"
        viz.save_figure(fig, path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        return self.show(path)

    def show(self, path, note=""):
        """Name the saved figure ``path`` (with ``note``) and, in a notebook, show it inline."""
        print(f"figure: {path}{note}")
        if in_notebook():  # Agg (above) shows nothing by itself: show the very PNG that was saved
            from IPython.display import Image, display
            display(Image(data=Path(path).read_bytes(), format="png"))
        return path

    def train(self, model, train_set, test_set, epochs, lr, name, batch_size=128, transform=None, test_transform=None,
              schedule=None, weight_decay=5e-4, pixels="unit", stop=None, seed=None, mean="image"):
        """Train ``model`` with the paper's SGD (momentum 0.9, weight decay 5e-4) via ``tinyalex.train.fit``.

        Every image first loses the training set's mean image, the paper's only preprocessing
        (section 2), on the scale ``pixels`` names ("unit": [0, 1]; "paper": [0, 255], as
        cuda-convnet fed the paper's networks; see ``tinyalex.data.pipeline``); then ``transform``
        (training images) or ``test_transform`` (test images) runs, ending in CHW floats (both
        default to ``ToFloat()``). ``mean="colour"`` subtracts the mean colour instead (VGG section 2.1),
        *after* the transforms, which then work on the uint8 images of any size (``ScaleJitter``).
        ``schedule``: a function of the optimiser returning a
        learning-rate schedule, e.g. ``lambda opt: optim.ReduceOnPlateau(opt)``. ``stop(history)``
        ends the run early (see ``fit``); ``seed`` orders the batches (default: ``--seed``). A run
        left in its folder by the same command with the same settings (an interrupted lesson) is
        continued from its ``last.npz``, bit for bit, instead of trained again.
        The run (metrics.jsonl, curves.png, checkpoints) goes to ``<out>/<number>_<name>/``. Returns
        fit's per-epoch records: "train_top1_error" (measured while the epoch trains, as in the
        paper's Figure 1), "val_top1_error" (here: the test set), losses, lr, seconds.
        """
        from tinyalex import checkpoint, optim
        from tinyalex.train import fit
        model.to(self.device)
        seed = self.args.seed if seed is None else seed
        train_loader = self.loader(train_set, train_set, transform, batch_size, pixels, mean, shuffle=True, seed=seed)
        test_loader = self.loader(test_set, train_set, test_transform, pixels=pixels, mean=mean)
        optimizer = optim.SGD(model.parameters(), lr, weight_decay=weight_decay)
        run = self.out / f"{self.number}_{name}"
        # what makes this run this run: the same command finds it again and continues it, exactly
        key = {"lesson": self.number, "name": name, "mode": self.mode, "data": self.args.data, "seed": seed,
               "n_train": len(train_set), "lr": lr, "batch_size": batch_size, "weight_decay": weight_decay,
               "pixels": pixels, "model": repr(model)}
        if mean != "image":  # runs from before the option subtracted the mean image; their keys stay valid
            key["mean"] = mean
        resume = run / "last.npz"
        try:
            resume = resume if checkpoint.load(resume).extra.get("lesson_run") == key else None
        except (OSError, checkpoint.CheckpointError):  # no run yet, or not one to continue
            resume = None
        print(f"--- training {name}: {len(train_set):,} images, {epochs} epochs, lr {lr}"
              + (f" (continuing {resume})" if resume else ""))
        def on_epoch(history):  # every training of the lesson, in its results file as it goes
            curves = {"lr": lr, "train_errors": [r["train_top1_error"] for r in history],
                      "test_errors": [r["val_top1_error"] for r in history],
                      "seconds": round(sum(r["seconds"] for r in history), 1)}
            self.record(trained={**self.results.get("trained", {}), name: curves})

        return fit(model, optimizer, train_loader, test_loader, epochs, str(run),
                   schedule=schedule(optimizer) if schedule else None, progress=True, resume=resume,
                   extra={"lesson_run": key}, log=lambda line: print(f"  {name}: {line}"), stop=stop,
                   on_epoch=on_epoch)

    def sweep(self, make_model, rates, train_set, test_set, epochs, name, fallback, widen=3, **options):
        """The learning rate that trains ``make_model()`` fastest: each of ``rates`` for ``epochs``
        epochs from the same initial weights, scored by the last epoch's training error.

        AlexNet, Figure 1: "The learning rates for each network were chosen independently to make
        training as fast as possible." A best rate at either end of ``rates`` is no proof of a best:
        the grid then grows by a factor 3 past that end, up to ``widen`` more rates, until the
        newest rate trains worse or diverges.

        A best at chance is chosen by noise. A network that knows nothing of the labels errs on each
        of the n training images with probability p = 1 - 1/K (K balanced classes), so its epoch's
        error has the binomial standard error sqrt(p (1 - p) / n); the best counts only when it is
        ``CHANCE_MARGIN`` = 3 of them below p (n = 2,000, K = 10: below 88.0%; n = 50,000: 89.6%).
        When no rate gets there the sweep says so and returns the caller's ``fallback`` instead.
        Returns (rate, record): record holds ``errors`` ({rate: training error, or None where the run
        diverged}), ``chance`` (p), ``clearly_below``, ``fallback`` and ``fell_back``; ``options`` go
        to ``train``. A grid where every rate diverged is an error, not a case for the fallback.
        """
        from tinyalex.train import NonFiniteLoss
        scores = {}

        def score(lr):
            ta.manual_seed(self.args.seed)
            try:
                history = self.train(make_model(), train_set, test_set, epochs, lr, f"{name}_sweep_lr{lr:g}", **options)
                scores[lr] = history[-1]["train_top1_error"]
            except NonFiniteLoss as e:
                print(f"  lr {lr:g} diverged: {e}")
                scores[lr] = None

        def best():
            finite = {lr: e for lr, e in scores.items() if e is not None}
            if not finite:
                raise RuntimeError(f"{name}: every learning rate of {sorted(scores)} diverged; try smaller ones")
            return min(finite, key=finite.get)

        for lr in rates:
            score(lr)
        for _ in range(widen):
            low, high = min(scores), max(scores)
            if best() not in (low, high) or len(scores) < 2:
                break
            score(float(f"{high * 3:.3g}") if best() == high else float(f"{low / 3:.3g}"))
        chance = 1 - 1 / len(train_set.classes)
        below = chance - CHANCE_MARGIN * np.sqrt(chance * (1 - chance) / len(train_set))
        fell_back = scores[best()] >= below
        chosen = fallback if fell_back else best()
        mark = "<- fallback" if fell_back else "<- best"
        print(table([(f"{lr:g}", "diverged" if e is None else f"{e:.1%}", mark if lr == chosen else "")
                     for lr, e in sorted(scores.items())], (f"{name}: lr", f"training error after {epochs} epoch(s)", "")))
        if fell_back:
            print(f"{name}: no rate's training error is clearly below chance ({chance:.0%}; clearly: below {below:.1%}, "
                  f"{CHANCE_MARGIN} binomial standard errors over {len(train_set):,} images), so picking among them "
                  f"would pick noise: the stated fallback lr {fallback:g} instead")
        return chosen, {"errors": dict(sorted(scores.items())), "chance": chance, "clearly_below": float(below),
                        "fallback": fallback, "fell_back": bool(fell_back)}

    def ablation(self, variants, rates, seeds, epochs, train_set, test_set, fallback, **options):
        """The paper's ablations, each network with its own learning rate and over several seeds.

        ``variants`` maps a name to a function making a fresh network. Each variant's rate is the best
        of ``rates`` after a one-epoch ``sweep``, or ``fallback[name]`` where no rate left chance; then
        every variant trains for ``epochs`` from each of ``seeds`` (the same initial weights and batches
        for all variants of a seed). Records, in ``NN_results.json`` as they come: ``sweep`` ({name: its
        ``sweep`` record}), ``lr``, ``runs`` ({name: per seed ``seed``, ``train_errors``, ``test_errors``,
        ``seconds``}) and ``summary`` ({name: final ``test_error``, ``train_error`` and ``gap`` (test -
        train), each (mean, std) over the seeds}). Returns
        (summary, runs, {name: the last seed's network}, {name: its history}).
        """
        lr, sweep = {}, {}
        for name, make in variants.items():
            lr[name], sweep[name] = self.sweep(make, rates, train_set, test_set, 1, name, fallback[name], **options)
            self.record(sweep=sweep, lr=lr)
        runs, nets, history = {name: [] for name in variants}, {}, {}
        for seed in seeds:
            for name, make in variants.items():
                ta.manual_seed(seed)
                nets[name] = make()
                history[name] = self.train(nets[name], train_set, test_set, epochs, lr[name], f"{name}_seed{seed}",
                                           seed=seed, **options)
                runs[name].append({"seed": seed, "train_errors": [r["train_top1_error"] for r in history[name]],
                                   "test_errors": [r["val_top1_error"] for r in history[name]],
                                   "seconds": round(sum(r["seconds"] for r in history[name]), 1)})
                self.record(runs=runs)
        summary = {name: {"test_error": spread([r["test_errors"][-1] for r in rs]),
                          "train_error": spread([r["train_errors"][-1] for r in rs]),
                          "gap": spread([r["test_errors"][-1] - r["train_errors"][-1] for r in rs])}
                   for name, rs in runs.items()}
        self.record(summary=summary)
        print(table([(name, f"{lr[name]:g}", shown(summary[name]["train_error"]), shown(summary[name]["test_error"]),
                      shown(summary[name]["gap"], points=True)) for name in variants],
                    ("network", "lr", f"final training error ({len(seeds)} seeds)", "final test error", "gap")))
        return summary, runs, nets, history

    def loader(self, dataset, train_set, transform=None, batch_size=500, pixels="unit", mean="image", **options):
        """A DataLoader over ``dataset`` on this lesson's device that prepares images as ``train`` does:
        minus ``train_set``'s mean image on the scale ``pixels``, then ``transform`` (default ``ToFloat()``);
        with ``mean="colour"``, ``transform`` first, then minus the mean colour."""
        from tinyalex import data
        from tinyalex.data import transforms as T
        key = (train_set, pixels, mean)  # the mean image of 50,000 images, fitted once per run, not per loader
        if key not in self._prepared:
            self._prepared[key] = data.pipeline.preprocess(train_set.images_labels()[0], pixels=pixels, mean=mean)
        first = self._prepared[key]
        steps = [first, transform or T.ToFloat()] if mean == "image" else [*([transform] if transform else []),
                                                                           first, T.ToFloat()]
        return data.DataLoader(dataset, batch_size, device=self.device, transform=T.Compose(steps), **options)

    def plot_errors(self, ax, histories, model, train_set, train=False):
        """Test top-1 error per epoch of each run in ``histories`` ({label: ``train``'s records}) on
        ``ax``, with ``train=True`` also the training error (dashed, same colour)."""
        for label, history in histories.items():
            epochs = [r["epoch"] for r in history]
            (line,) = ax.plot(epochs, [100 * r["val_top1_error"] for r in history], "-o", ms=3,
                              label=f"{label}: test (final {history[-1]['val_top1_error']:.1%})")
            if train:
                ax.plot(epochs, [100 * r["train_top1_error"] for r in history], "--", color=line.get_color(),
                        label=f"{label}: train")
        ax.set(xlabel="epochs", ylabel="top-1 error rate (%)", title=f"{model}, {len(train_set):,} {self.data_name} images")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)

    def done(self):
        seconds = time.perf_counter() - self.started
        self.record(seconds=round(seconds, 1))
        print(f"measured figures: {self.results_path}")
        print(f"=== Lesson {self.number} done in {seconds:.1f} s ===")


def _plain(value):
    """NumPy numbers and arrays as JSON numbers and lists (for ``Lesson.record``)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"Lesson.record: {type(value).__name__} is not JSON-able")


def subset(dataset, n, seed):
    """``n`` images of ``dataset`` drawn at random without replacement, held in memory."""
    from tinyalex.data.memory import InMemory
    images, labels = dataset.images_labels()
    keep = np.sort(np.random.default_rng(seed).choice(len(labels), size=min(n, len(labels)), replace=False))
    part = InMemory()
    part.images, part.labels, part.classes = images[keep], labels[keep], dataset.classes
    return part


def spread(values):
    """(mean, std) of the values of several seeds, or (None, None) when any is missing (a run that did
    not get there)."""
    if not values or any(v is None for v in values):
        return None, None
    return float(np.mean(values)), float(np.std(values))


def paired(runs, a, b):
    """Variant ``a`` minus variant ``b`` of ``Lesson.ablation``'s runs, seed by seed: the final test
    error (``test_error``) and the train-test gap (``gap``), each (mean, std) of the differences."""
    def final(record, split):
        return record[f"{split}_errors"][-1]
    pairs = list(zip(runs[a], runs[b], strict=True))
    return {"test_error": spread([final(x, "test") - final(y, "test") for x, y in pairs]),
            "gap": spread([(final(x, "test") - final(x, "train")) - (final(y, "test") - final(y, "train"))
                           for x, y in pairs])}


def shown(pair, points=False):
    """A (mean, std) of ``spread`` as text: an error rate in per cent, or with ``points=True`` a
    difference of rates in percentage points; the std only where it is nonzero (several seeds)."""
    mean, std = pair
    if mean is None:
        return "-"
    text = f"{100 * mean:+.1f}" if points else f"{100 * mean:.1f}"
    return text + (f" +- {100 * std:.1f}" if std else "") + (" points" if points else "%")


def table(rows, header):
    """A plain-text table: ``rows`` of values under ``header`` (numbers right-aligned)."""
    cells = [[str(h) for h in header]] + [[f"{v:,}" if isinstance(v, (int, np.integer)) else str(v) for v in r]
                                          for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_layers(model, x, start=None, stop=None):
    """``x`` through the layers of the Sequential ``model`` from the one named ``start`` to ``stop``
    (both included; None: the first / the last), e.g. the features of a hidden layer."""
    names = model.names()
    first, last = names.index(start) if start else 0, names.index(stop) + 1 if stop else len(names)
    for layer in list(model)[first:last]:
        x = layer(x)
    return x


def set_dropout(model, p):
    """Set the drop probability of every ``nn.Dropout`` layer of ``model`` (p = 0 switches dropout off)."""
    from tinyalex import nn
    for layer in model.modules():
        if isinstance(layer, nn.Dropout):
            layer.p = p
    return model


def predict(model, loader):
    """(softmax outputs, labels) of ``model`` in eval mode over every batch of ``loader``, as NumPy arrays."""
    from tinyalex import functional as F
    model.eval()
    probs, labels = [], []
    with ta.no_grad():
        for images, y in loader:
            probs.append(F.softmax(model(images)).numpy())
            labels.append(y.numpy())
    return np.concatenate(probs), np.concatenate(labels)
