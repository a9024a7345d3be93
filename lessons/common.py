"""What every lesson shares: its options, the opening banner, progress bars, data and saved figures.

A lesson starts with::

    lesson = common.Lesson("02", "ReLU vs tanh", "section 3.1, Figure 1",
                           runs={"quick": ("two tiny CNNs, 2 epochs", "10 s"),
                                 "default": ("two four-layer CNNs, 12 epochs", "4 min"),
                                 "data": ("the same on CIFAR-10", "20 min on CPU, 2 min on a GPU")})

which reads the command line, says what will run and how long it takes, and gives the lesson
``lesson.mode`` ("quick", "default" or "data"), ``lesson.device``, ``lesson.pick(quick=..., ...)``,
``lesson.datasets(...)``, ``lesson.train(...)``, ``lesson.progress(...)``, ``lesson.save(fig, name)``
and ``lesson.done()``. ``table`` prints results; ``four_layer_cnn`` is the small network of the
paper's CIFAR-10 experiments (lessons 02, 04, 05).

Options (every lesson):

    --quick          seconds, on the embedded synthetic data, CPU (the test suite runs this)
    (none)           the default: a few minutes on the CPU, on the embedded synthetic data
    --data PATH      a real data set (see ``tinyalex.data.load``), e.g. CIFAR-10; best with --device cuda
    --small          with --data: the default run's sizes, on a random part of the data set (a CPU run)
    --device DEV     cpu, cuda or cuda:N
    --out DIR        where figures go (default: lessons/out/)
    --seed N         the engine's random seed (default 0)
"""
import argparse
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures go to files; no window, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import tinyalex as ta  # noqa: E402
from tinyalex import viz  # noqa: E402

HERE = Path(__file__).resolve().parent


def parse_options(argv=None):
    p = argparse.ArgumentParser(description="Run a tinyalex lesson as a script.")
    p.add_argument("--quick", action="store_true", help="seconds, embedded synthetic data, CPU (for tests)")
    p.add_argument("--data", help="a data set for tinyalex.data.load: 'cifar10', a CIFAR-10 folder, "
                                  "or an image folder with train/ and test/")
    p.add_argument("--small", action="store_true",
                   help="with --data: the default run's sizes on a random part of the data set (fits a CPU)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--out", default=str(HERE / "out"), help="folder for figures (default lessons/out)")
    p.add_argument("--seed", type=int, default=0, help="the engine's random seed (default 0)")
    # parse_known_args: inside Jupyter, sys.argv holds the kernel's own arguments
    args, _ = p.parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.quick and args.data:
        p.error("--quick runs on the embedded data; leave out --data")
    if args.small and not args.data:
        p.error("--small shrinks a --data run; give --data too")
    return args


class Lesson:
    """One run of a lesson: options, banner, the size knobs of each mode, data, figures, timing.

    ``runs`` maps each mode to (what it runs, how long it takes); modes left out fall back to
    "default", so a lesson that needs no data set simply runs its default experiment with --data.
    """

    def __init__(self, number, title, section, runs, argv=None):
        self.args = parse_options(argv)
        self.number, self.title = number, title
        self.mode = "quick" if self.args.quick else "data" if self.args.data and not self.args.small else "default"
        self.data_name = Path(self.args.data).name.split(".")[0] if self.args.data else "synthetic"
        self.device = ta.backend.parse_device(self.args.device)
        self.out = Path(self.args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        ta.manual_seed(self.args.seed)
        ta.backend.keep_freed_cpu_memory()  # a lesson is one short-lived process: faster CPU training
        self.started = time.perf_counter()
        what, how_long = runs.get(self.mode, runs["default"])
        print(f"=== Lesson {number}: {title} (paper {section}) ===")
        print(f"This will run {what}, on {self.device} ({self.mode} mode); it takes about {how_long}.")
        if self.args.small:
            print(f"--small: the default run's sizes and epochs, on images of {self.data_name} instead")
        print(f"Figures go to {self.out}{os.sep}")

    def pick(self, quick, default, data=None):
        """The setting for this run's mode (``data`` falls back to ``default``)."""
        return {"quick": quick, "default": default, "data": default if data is None else data}[self.mode]

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
        """Write ``fig`` as ``<out>/<number>_<name>.png``, atomically as every file tinyalex writes."""
        path = self.out / f"{self.number}_{name}.png"
        viz.save_figure(fig, path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        print(f"figure: {path}")
        return path

    def train(self, model, train_set, test_set, epochs, lr, name, batch_size=128, transform=None, test_transform=None,
              schedule=None, weight_decay=5e-4):
        """Train ``model`` with the paper's SGD (momentum 0.9, weight decay 5e-4) via ``tinyalex.train.fit``.

        Every image first loses the training set's mean image, the paper's only preprocessing
        (section 2); then ``transform`` (training images) or ``test_transform`` (test images) runs,
        ending in CHW floats (both default to ``ToFloat()``). ``schedule``: a function of the
        optimiser returning a learning-rate schedule, e.g. ``lambda opt: optim.ReduceOnPlateau(opt)``.
        The run (metrics.jsonl, curves.png, checkpoints) goes to ``<out>/<number>_<name>/``. Returns
        fit's per-epoch records: "train_top1_error" (measured while the epoch trains, as in the
        paper's Figure 1), "val_top1_error" (here: the test set), losses, lr, seconds.
        """
        from tinyalex import optim
        from tinyalex.train import fit
        model.to(self.device)
        train_loader = self.loader(train_set, train_set, transform, batch_size, shuffle=True, seed=self.args.seed)
        test_loader = self.loader(test_set, train_set, test_transform)
        optimizer = optim.SGD(model.parameters(), lr, weight_decay=weight_decay)
        print(f"--- training {name}: {len(train_set):,} images, {epochs} epochs, lr {lr}")
        return fit(model, optimizer, train_loader, test_loader, epochs, str(self.out / f"{self.number}_{name}"),
                   schedule=schedule(optimizer) if schedule else None, progress=True,
                   log=lambda line: print(f"  {name}: {line}"))

    def loader(self, dataset, train_set, transform=None, batch_size=500, **options):
        """A DataLoader over ``dataset`` on this lesson's device that prepares images as ``train`` does:
        minus ``train_set``'s mean image, then ``transform`` (default ``ToFloat()``)."""
        from tinyalex import data
        from tinyalex.data import transforms as T
        mean = T.MeanSubtract.fit(train_set.images_labels()[0])
        return data.DataLoader(dataset, batch_size, device=self.device,
                               transform=T.Compose([mean, transform or T.ToFloat()]), **options)

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
        print(f"=== Lesson {self.number} done in {time.perf_counter() - self.started:.1f} s ===")


def subset(dataset, n, seed):
    """``n`` images of ``dataset`` drawn at random without replacement, held in memory."""
    from tinyalex.data.memory import InMemory
    images, labels = dataset.images_labels()
    keep = np.sort(np.random.default_rng(seed).choice(len(labels), size=min(n, len(labels)), replace=False))
    part = InMemory()
    part.images, part.labels, part.classes = images[keep], labels[keep], dataset.classes
    return part


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


def four_layer_cnn(activation="relu", lrn=False, pool=(3, 2), num_classes=10):
    """The small CIFAR-10 network of the paper's Figure 1 and section 3.3: three conv layers and one FC.

        [conv 5x5, 32 -> f -> (LRN) -> max pool] -> [conv 5x5, 32 -> ...] -> [conv 5x5, 64 -> ...] -> fc

    in the paper's layer order (conv -> nonlinearity -> LRN -> pool). ``activation`` is "relu" or
    "tanh" (lesson 02), ``lrn`` switches the paper's LRN on (lesson 04), ``pool`` is the (kernel,
    stride) of every pooling layer: (3, 2) overlaps, (2, 2) does not (lesson 05). 32x32 inputs.
    """
    from tinyalex import nn
    from tinyalex.functional import conv_outsize
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    layers, channels, size = [], 3, 32
    for width in (32, 32, 64):
        layers += [nn.Conv2d(channels, width, 5, padding=2), act()]
        layers += [nn.LRN()] if lrn else []
        layers += [nn.MaxPool2d(*pool)]
        channels, size = width, conv_outsize(size, *pool, 0)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * size * size, num_classes))
