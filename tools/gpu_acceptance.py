"""Every GPU check of tinyalex in one command, within a time budget (9 minutes on one GPU by default).

    python tools/gpu_acceptance.py --data .carry/cifar10-jpeg.tar.gz --out acceptance
    python tools/gpu_acceptance.py --dry-run --out /tmp/acceptance      # the same steps, tiny, CPU, ~30 s

The steps, in order, each with its own budget (seconds) and its own log ``<out>/<step>.log``:

    env                  Python, NumPy, CuPy, PyTorch versions and the GPU (fails at once without one)
    tests                the test suite's GPU tests (pytest -m gpu): device parity of every op,
                         bit-identical col2im and max-pool backward over repeated runs, two columns
                         on (cuda, cuda) and on (cuda, cpu)
    bench-alexnet        tinyalex bench --device cuda --against torch --model alexnet --batch-size 128
    bench-alexnet-cifar  the same for alexnet-cifar
    train                tinyalex train --model alexnet-cifar --data DATA --device cuda for as many
                         epochs as fit in its budget (it is stopped with Ctrl-C's signal after that;
                         at least 10 epochs to pass); the test accuracy after the last epoch
    lesson02             lessons/02_relu_vs_tanh.py --data DATA --device cuda, in the time left (it
                         writes its numbers to 02_results.json as it goes, so a stopped run still counts)

``<out>/report.json`` and ``<out>/report.md`` are rewritten after every step (a step is recorded as
running before it starts), so the report survives a step that fails, hangs, or the whole command being
killed. The report folder holds these 2 files and one log per step, nothing else; checkpoints, bench
JSON and the unpacked data go to ``--work`` (default: a new temporary folder, named in the report).
The exit status is 0 when every step but lesson02 passed.

``--dry-run`` runs the whole thing on the CPU with tiny sizes: a few CPU halves of the GPU-parity
tests, both benches on alexnet-cifar at batch 2 (without --against torch where PyTorch is absent),
one epoch of a 1/16-width network on a 30-image archive made on the spot, lesson 02's --quick run.

Carrying the data and packages to a GPU machine that is reached through a copy of the checkout (and
cannot download): see tools/README.md.
"""
import argparse
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # run as a script from a checkout: its own tinyalex, as the steps get
    sys.path.insert(0, str(ROOT))

from tinyalex.checkpoint import atomic_write  # noqa: E402

TOTAL_S = 540        # 9 minutes: one run and a rerun fit in a 15-minute lease with the machine's start
GRACE_S = 20         # after the budget's signal, the time a step has to save and exit before it is killed
MIN_EPOCHS = 10      # the training run's least number of epochs to pass
TAIL_LINES = 20     # of a failed step's log, copied into the report
OPTIONAL = ("lesson02",)
PYTEST_CLOSING = re.compile(r"(\d+ \w+|no tests ran)(, \d+ \w+)* in [\d.]+s( \(.*\))?")  # run in the time left; its failure does not fail the acceptance

# Budgets in seconds, guesses until the first GPU run measures them; the total is cut by --budget.
BUDGETS = {"env": 20, "tests": 120, "bench-alexnet": 75, "bench-alexnet-cifar": 45, "train": 240,
           "lesson02": TOTAL_S}

PROBE = """\
import json, platform, sys
import numpy
from tinyalex import backend
info = {"python": platform.python_version(), "numpy": numpy.__version__}
device = backend.parse_device(sys.argv[1])
if device != "cpu":
    cp = backend.module_for(device)  # fails here, with the reason, where CuPy or the GPU is missing
    props = cp.cuda.runtime.getDeviceProperties(backend.device_index(device))
    info.update(cupy=cp.__version__, cuda_runtime=cp.cuda.runtime.runtimeGetVersion(),
                gpu=props["name"].decode(), gpu_memory_gib=round(props["totalGlobalMem"] / 2**30, 1))
try:
    import torch
    info["torch"] = torch.__version__
except ImportError:
    info["torch"] = None
print(json.dumps(info))
"""


@dataclass
class Step:
    """One check: a command run from the checkout's root, its budget, and how to read what it left.

    ``read(rc, stopped)`` -> (passed, result dict) from the exit status, whether the budget stopped it,
    and the files it wrote; ``log`` is the step's own log file.
    """
    name: str
    argv: list
    budget_s: float
    read: object
    log: Path = None


# ---------------------------------------------------------------- running a step
def run_step(step, env, seconds_left):
    """Run ``step`` for at most min(its budget, ``seconds_left`` - GRACE_S) seconds; its record."""
    limit = min(step.budget_s, seconds_left - GRACE_S)
    command = shlex.join(str(a) for a in step.argv)
    if limit < 1:
        return {"status": "skipped", "why": "no time left in the total budget", "command": command}
    tic = time.monotonic()
    # streamed, not written atomically: a step stopped at its budget leaves all it printed
    with open(step.log, "w", encoding="utf-8") as log:
        log.write(f"$ {command}\n")
        log.flush()
        # a session of its own, so that the signal reaches the step's children too (bench's spawned
        # memory probes, the loader's threads' process)
        proc = subprocess.Popen([str(a) for a in step.argv], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        stopped = False
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            stopped, rc = True, stop(proc)
    seconds = time.monotonic() - tic
    try:
        passed, result = step.read(rc, stopped)
    except (OSError, ValueError, KeyError) as e:  # what the step should have written is missing or garbled
        passed, result = False, {"error": f"{type(e).__name__}: {e}"}
    record = {"status": "passed" if passed else "timed out" if stopped else "failed", "seconds": round(seconds, 1),
              "budget_s": round(limit, 1), "exit_status": rc, "stopped_at_budget": stopped, "command": command,
              "log": step.log.name, "result": result}
    if not passed:  # what went wrong, in the report itself: the log may not come back with it
        record["log_tail"] = step.log.read_text(encoding="utf-8", errors="replace").splitlines()[-TAIL_LINES:]
    return record


def stop(proc):
    """SIGINT to the step's process group (Python raises KeyboardInterrupt: the training run ends
    cleanly between checkpoints), then SIGKILL after GRACE_S; the exit status."""
    for sig, wait in ((signal.SIGINT, GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:  # it has exited meanwhile
            pass
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


# ---------------------------------------------------------------- reading what each step left
def read_env(log):
    def read(rc, stopped):
        return rc == 0, json.loads(log.read_text(encoding="utf-8").strip().splitlines()[-1])
    return read


def read_tests(log):
    """pytest's closing line, e.g. '40 passed, 3 skipped in 61.2s' -> counts; passed: none failed, some ran."""
    def read(rc, stopped):
        lines = [line.strip("= ") for line in log.read_text(encoding="utf-8").splitlines()]
        summary = next((line for line in reversed(lines) if PYTEST_CLOSING.fullmatch(line)), "")
        counts = {what: int(number) for number, what in re.findall(r"(\d+) (\w+)", summary.split(" in ")[0])}
        return rc == 0 and counts.get("passed", 0) > 0, {"summary": summary, "counts": counts}
    return read


def read_bench(path):
    """The bench JSON: the step's times per framework, its speed ratio, memory, and the whole result."""
    def read(rc, stopped):
        bench = json.loads(path.read_text(encoding="utf-8"))
        step = bench.get("step", {})
        return rc == 0, {"step_ms": step.get("ms"), "images_per_s": step.get("images_per_s"),
                         "speed_ratio": step.get("speed_ratio"), "memory": bench.get("memory"), "bench": bench}
    return read


def read_train(run, min_epochs):
    """metrics.jsonl of the run: epochs done, test accuracy after the last one; passed at min_epochs.

    Being stopped at the budget is how a run "for as many epochs as fit" ends, not a failure.
    """
    def read(rc, stopped):
        metrics = run / "metrics.jsonl"
        history = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines()] \
            if metrics.exists() else []
        result = {"epochs": len(history), "min_epochs": min_epochs, "history": history}
        if history:
            last, best = history[-1], min(history, key=lambda r: r["val_top1_error"])
            result.update(test_accuracy=1 - last["val_top1_error"], best_test_accuracy=1 - best["val_top1_error"],
                          best_epoch=best["epoch"], seconds_per_epoch=sum(r["seconds"] for r in history) / len(history),
                          images_per_s=last["images_per_s"])
        return (rc == 0 or stopped) and len(history) >= min_epochs, result
    return read


def read_lesson(results):
    """The lesson's NN_results.json as far as it got (it is rewritten after every record)."""
    def read(rc, stopped):
        found = json.loads(results.read_text(encoding="utf-8")) if results.exists() else {}
        return rc == 0, {key: found.get(key) for key in ("mode", "seconds", "lr", "summary")}
    return read


# ---------------------------------------------------------------- the plan
def plan(args, work):
    """The steps, with the commands of a GPU run or (``args.dry_run``) of a tiny CPU one."""
    py, device, dry = sys.executable, args.device, args.dry_run
    log = Path(args.out)
    tests = ["-m", "not slow", "-k", "parity or reference", "tests/test_loss.py", "tests/test_dropout.py"] if dry \
        else ["-m", "gpu", "--durations=15", "tests"]
    torch = [] if dry and not _has_torch() else ["--against", "torch"]
    benches = [("alexnet", "alexnet-cifar" if dry else "alexnet"), ("alexnet-cifar", "alexnet-cifar")]
    size = ["--batch-size", "2", "--repeat", "1", "--warmup", "0"] if dry else ["--batch-size", "128"]
    run, lesson = work / "train", work / "lesson02"
    train_size = ["--epochs", "1", "--batch-size", "8", "--width", "0.0625"] if dry else ["--epochs", "30"]
    lesson_run = ["--quick"] if dry else ["--data", args.data, "--device", device]
    steps = [Step("env", [py, "-c", PROBE, device], BUDGETS["env"], read_env(log / "env.log")),
             Step("tests", [py, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", *tests], BUDGETS["tests"],
                  read_tests(log / "tests.log"))]
    for name, model in benches:
        result = work / f"bench-{name}.json"
        steps.append(Step(f"bench-{name}", [py, "-m", "tinyalex", "bench", "--device", device, *torch, "--model",
                                            model, *size, "--json", result], BUDGETS[f"bench-{name}"],
                          read_bench(result)))
    # --val-split test: the step is stopped when its budget ends, before train's closing test of best.npz,
    # so each epoch's validation figure must be the test error it reports as the test accuracy
    steps += [Step("train", [py, "-m", "tinyalex", "train", "--model", "alexnet-cifar", "--data", args.data,
                             "--device", device, *train_size, "--val-split", "test", "--quiet", "--out", run],
                   BUDGETS["train"],
                   read_train(run, 1 if dry else MIN_EPOCHS)),
              Step("lesson02", [py, "lessons/02_relu_vs_tanh.py", *lesson_run, "--out", lesson], BUDGETS["lesson02"],
                   read_lesson(lesson / "02_results.json"))]
    for step in steps:
        step.log = log / f"{step.name}.log"
    return steps


def _has_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def tiny_archive(path, per_class=(2, 1)):
    """A CIFAR-10-like image-folder archive of the synthetic shapes (train/<class>/, test/<class>/ PNGs),
    small enough for a CPU epoch in a second: what --dry-run trains on, through the same --data route."""
    from PIL import Image
    from tinyalex.data import SyntheticShapes
    with atomic_write(path) as f, tarfile.open(fileobj=f, mode="w:gz") as tar:
        for split, n in zip(("train", "test"), per_class):
            shapes = SyntheticShapes(n * len(SyntheticShapes.classes), seed=0, train=split == "train")
            for i in range(len(shapes)):
                image, label = shapes[i]
                png = io.BytesIO()
                Image.fromarray(image).save(png, format="PNG")
                member = tarfile.TarInfo(f"tiny/{split}/{shapes.classes[label]}/{i:04d}.png")
                member.size = png.tell()
                png.seek(0)
                tar.addfile(member, png)
    return path


# ---------------------------------------------------------------- the report
def write_report(out, report):
    with atomic_write(out / "report.json", "w") as f:
        json.dump(report, f, indent=1)
    with atomic_write(out / "report.md", "w") as f:
        f.write(markdown(report))


def markdown(report):
    lines = [f"# tinyalex GPU acceptance: {report['verdict']}", "",
             f"{report['date']}, device {report['device']}{', dry run (CPU, tiny sizes)' if report['dry_run'] else ''}, "
             f"total budget {report['budget_s']} s, {report.get('seconds', '...')} s used; work folder {report['work']}",
             "", "| step | status | seconds / budget | result |", "|---|---|---|---|"]
    for name, r in report["steps"].items():
        spent = f"{r.get('seconds', '')} / {r.get('budget_s', '')}"
        lines.append(f"| {name} | {r['status']} | {spent} | {headline(name, r)} |")
    lines += ["", "Logs: " + ", ".join(f"{name}.log" for name in report["steps"]) + "; commands in report.json."]
    for name, r in report["steps"].items():
        if r.get("log_tail"):
            lines += ["", f"## {name}: the end of {name}.log", "", "```", *r["log_tail"], "```"]
    return "\n".join(lines) + "\n"


def headline(name, record):
    """One line of what a step found, for the markdown table."""
    r = record.get("result") or {}
    if "error" in r or record["status"] in ("waiting", "running", "skipped"):
        return r.get("error") or record.get("why", "")
    if name == "env":
        return ", ".join(f"{k} {v}" for k, v in r.items())
    if name == "tests":
        return r.get("summary", "")
    if name.startswith("bench"):
        ms = ", ".join(f"{k} {v:.1f} ms" for k, v in (r.get("step_ms") or {}).items())
        ratio = f", speed {r['speed_ratio']:.2f}x torch (target 0.7x)" if r.get("speed_ratio") else ""
        return f"train step {ms}{ratio}"
    if name == "train":
        if not r.get("epochs"):
            return "no epoch finished"
        return (f"{r['epochs']} epochs (at least {r['min_epochs']} to pass), test accuracy {r['test_accuracy']:.1%} at the "
                f"end (best {r['best_test_accuracy']:.1%} at epoch {r['best_epoch']}), {r['seconds_per_epoch']:.1f} s "
                f"per epoch, {r['images_per_s']:.0f} img/s")
    ratios = {k: (r.get("summary") or {}).get(k) for k in ("ratio_25", "ratio_50")}
    return f"{r.get('mode')} run, {r.get('seconds')} s, learning rates {r.get('lr')}, tanh/ReLU epochs {ratios}"


def acceptance(args):
    """Run the plan within ``args.budget`` seconds, rewriting the report after each step; the report."""
    # a process started with SIGINT ignored (a background job of a non-interactive shell) passes that on,
    # and Python then never raises KeyboardInterrupt: the budget's signal would not end the training run
    signal.signal(signal.SIGINT, signal.default_int_handler)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="tinyalex-acceptance-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.dry_run:
        args.data = str(tiny_archive(work / "tiny-data.tar.gz"))
    # PYTHONUNBUFFERED: the logs fill as the steps print, and hold their last words when one is stopped
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "TINYALEX_DATA": str(work / "cache"), "PYTHONUNBUFFERED": "1"}
    steps = [s for s in plan(args, work) if not args.only or s.name in args.only]
    report = {"verdict": "running", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "device": args.device,
              "dry_run": args.dry_run, "budget_s": args.budget, "work": str(work), "data": args.data,
              "steps": {s.name: {"status": "waiting"} for s in steps}}
    start = time.monotonic()
    for step in steps:
        report["steps"][step.name] = {"status": "running", "command": shlex.join(str(a) for a in step.argv)}
        write_report(out, report)
        report["steps"][step.name] = run_step(step, env, args.budget - (time.monotonic() - start))
        print(f"{step.name}: {report['steps'][step.name]['status']}", flush=True)
    report["seconds"] = round(time.monotonic() - start, 1)
    required = [r["status"] for name, r in report["steps"].items() if name not in OPTIONAL]
    report["verdict"] = "passed" if all(s == "passed" for s in required) else "FAILED"
    write_report(out, report)
    return report


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python tools/gpu_acceptance.py", description=__doc__.split("\n\n")[0],
                                epilog="Carrying CIFAR-10 and wheels to the GPU machine: tools/README.md.")
    p.add_argument("--data", help="CIFAR-10 for the training run and lesson 02: anything `tinyalex train --data` "
                   "reads (a .tar.gz of the image-folder layout, a cifar-10-batches-py folder, ...)")
    p.add_argument("--out", required=True, help="report folder: report.json, report.md, one log per step")
    p.add_argument("--work", help="folder for checkpoints, bench JSON, the unpacked data (default: a new temporary one)")
    p.add_argument("--device", default="cuda", help="cuda or cuda:N (default cuda)")
    p.add_argument("--budget", type=float, default=TOTAL_S, help=f"seconds for all the steps (default {TOTAL_S})")
    p.add_argument("--only", help=f"comma-separated steps to run (of {', '.join(BUDGETS)}), e.g. for a rerun")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU, in seconds (what the test suite runs)")
    args = p.parse_args(argv)
    if args.dry_run:
        args.device = "cpu"
    elif args.data is None and (not args.only or {"train", "lesson02"} & set(args.only.split(","))):
        p.error("--data is needed for the train and lesson02 steps (CIFAR-10; see tools/README.md), or --dry-run")
    if args.only:
        args.only = args.only.split(",")
        unknown = sorted(set(args.only) - set(BUDGETS))
        if unknown:
            p.error(f"--only: unknown step(s) {', '.join(unknown)}; the steps are {', '.join(BUDGETS)}")
    if not args.budget > 2 * GRACE_S:
        p.error(f"--budget must be more than {2 * GRACE_S} seconds, got {args.budget}")
    return args


def main(argv=None):
    report = acceptance(parse_args(sys.argv[1:] if argv is None else argv))
    print(markdown(report), end="")
    return 0 if report["verdict"] == "passed" else 1


if __name__ == "__main__":
    sys.exit(main())
