"""tools/gpu_acceptance.py: every step within its budget, a report that outlives a failing or stopped step,
and a --dry-run that goes through the whole thing on the CPU."""
import importlib.util
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "gpu_acceptance.py"
spec = importlib.util.spec_from_file_location("gpu_acceptance", SCRIPT)
acc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(acc)


def child(code):
    return [sys.executable, "-c", code]


def read_exit(rc, stopped):
    return rc == 0 and not stopped, {}


@pytest.fixture
def run_plan(tmp_path, monkeypatch):
    """Run acceptance() over the steps given as (name, argv, budget) instead of the real plan; the report."""
    monkeypatch.setattr(acc, "GRACE_S", 1)

    def run(*steps, budget=30):
        monkeypatch.setattr(acc, "plan", lambda args, work: [
            acc.Step(name, argv, seconds, read_exit, log=tmp_path / "out" / f"{name}.log")
            for name, argv, seconds in steps])
        args = acc.parse_args(["--data", "unused", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                               "--budget", str(budget)])
        report = acc.acceptance(args)
        assert json.loads((tmp_path / "out" / "report.json").read_text()) == report  # on disk as returned
        return report
    return run


@pytest.fixture
def sigint_ignored():
    """As in a background job of a non-interactive shell, which is how a remote command often runs."""
    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGINT, saved)


def test_a_step_past_its_budget_gets_ctrl_c_and_the_next_step_still_runs(run_plan, tmp_path, sigint_ignored):
    sleeper = "import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('saved and stopped')"
    tic = time.monotonic()
    report = run_plan(("train", child(sleeper), 1), ("after", child("print('ran')"), 10))
    assert time.monotonic() - tic < 15
    stopped, after = report["steps"]["train"], report["steps"]["after"]
    assert stopped["status"] == "timed out" and stopped["stopped_at_budget"]
    assert "saved and stopped" in (tmp_path / "out" / "train.log").read_text()  # a KeyboardInterrupt, not a kill
    assert stopped["log_tail"][-1] == "saved and stopped"
    assert after["status"] == "passed" and report["verdict"] == "FAILED"
    assert "| train | timed out |" in (tmp_path / "out" / "report.md").read_text()


def test_a_step_that_ignores_ctrl_c_is_killed_after_the_grace_period(run_plan):
    deaf = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)"
    tic = time.monotonic()
    report = run_plan(("tests", child(deaf), 1))
    assert time.monotonic() - tic < 15
    assert report["steps"]["tests"]["exit_status"] == -signal.SIGKILL


def test_the_report_says_a_step_is_running_before_it_runs(run_plan, tmp_path):
    peek = f"import json\nprint(json.load(open({str(tmp_path / 'out' / 'report.json')!r}))['steps'])"
    report = run_plan(("env", child("pass"), 10), ("tests", child(peek), 10))
    seen = (tmp_path / "out" / "tests.log").read_text()
    assert "'env': {'status': 'passed'" in seen and "'tests': {'status': 'running'" in seen
    assert report["verdict"] == "passed"


def test_steps_left_without_time_are_skipped_not_started(run_plan, tmp_path):
    report = run_plan(("env", child("import time; time.sleep(60)"), 10), ("lesson02", child("pass"), 100), budget=4)
    assert report["steps"]["env"]["status"] == "timed out"  # at 4 - 1 s of grace: the total budget holds
    assert report["steps"]["lesson02"] == {"status": "skipped", "why": "no time left in the total budget",
                                           "command": acc.shlex.join(child("pass"))}
    assert not (tmp_path / "out" / "lesson02.log").exists()


@pytest.mark.parametrize("closing, passed, counts", [
    ("29 passed, 3 skipped in 4.26s", True, {"passed": 29, "skipped": 3}),
    ("===== 1 failed, 28 passed, 2 errors in 9.1s =====", False, {"failed": 1, "passed": 28, "errors": 2}),
    ("3 skipped, 50 deselected in 1.0s", False, {"skipped": 3, "deselected": 50}),  # no GPU: nothing ran
])
def test_tests_pass_when_pytest_ran_some_and_none_failed(tmp_path, closing, passed, counts):
    log = tmp_path / "tests.log"
    log.write_text(f"$ python -m pytest\n..s.\n{closing}\n")
    assert acc.read_tests(log)(0 if passed else 1, False) == (passed, {"summary": closing.strip("= "), "counts": counts})


def test_training_passes_on_enough_epochs_also_when_stopped_at_its_budget(tmp_path):
    record = {"val_top1_error": 0.3, "seconds": 2.0, "images_per_s": 900.0}
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({**record, "epoch": e}) + "\n" for e in (1, 2)))
    read = acc.read_train(tmp_path, min_epochs=2)
    passed, result = read(-signal.SIGINT, True)
    assert passed and result["epochs"] == 2 and result["test_accuracy"] == pytest.approx(0.7)
    assert not read(1, False)[0]  # it crashed after epoch 2
    assert not acc.read_train(tmp_path, min_epochs=3)(0, True)[0]


def test_arguments_are_checked(capsys):
    for argv, message in ((["--out", "o"], "--data is needed"), (["--dry-run", "--out", "o", "--only", "tets"],
                                                                "unknown step\\(s\\) tets"),
                          (["--dry-run", "--out", "o", "--budget", "5"], "--budget must be more than")):
        with pytest.raises(SystemExit):
            acc.parse_args(argv)
        assert __import__("re").search(message, capsys.readouterr().err)


@pytest.mark.slow  # about 20 s: pytest, two benches, a training epoch and lesson 02 --quick
def test_the_dry_run_goes_through_every_step_on_the_cpu(tmp_path):
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out), "--work", str(tmp_path / "w")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text())
    assert {name: r["status"] for name, r in report["steps"].items()} == {name: "passed" for name in acc.BUDGETS}
    assert report["steps"]["train"]["result"]["epochs"] == 1
    assert report["steps"]["bench-alexnet-cifar"]["result"]["bench"]["batch"] == 2
    # one flat folder, at most 8 files: what a remote machine's output folder hands back
    assert sorted(p.name for p in out.iterdir()) == sorted(["report.json", "report.md",
                                                           *(f"{name}.log" for name in acc.BUDGETS)])
    assert "# tinyalex GPU acceptance: passed" in done.stdout
