"""A lesson's --help says what it teaches and what each mode runs; a bad option ends it at once with one line.

Each case runs a lesson as a student does (``python lessons/NN_topic.py ...``); all of them exit
while the lesson is being set up, before anything trains, so they take a second or two each.
"""
import os
import re
import subprocess
import sys

import pytest

import tinyalex as ta
from test_lessons import LESSONS, SCRIPTS

LESSON = SCRIPTS[0]  # the options are common.py's: any lesson shows them


def run_lesson(script, *args, env=None):
    return subprocess.run([sys.executable, script.name, *args], cwd=LESSONS, capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg", **(env or {})}, timeout=120)


@pytest.mark.slow  # 2-3 s a lesson on a busy machine
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_help_says_what_the_lesson_teaches_and_what_each_mode_runs(script, tmp_path):
    run = run_lesson(script, "--help", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    heading = rf"^Lesson {script.name[:2]}: .+ \(paper .+\)$"  # its title and the part of the paper it teaches
    assert re.search(heading, run.stdout, re.M), f"{script.name} --help does not name the lesson:\n{run.stdout}"
    for mode in ("--quick ", "(no option) ", "--data PATH ", "TINYALEX_LESSON_ARGS"):
        assert mode in run.stdout.split("what each mode runs:")[-1], f"{script.name} --help lacks {mode!r}"
    assert len(re.findall(r";\s+about\s", run.stdout)) == 3, f"{script.name} --help does not say how long each mode takes"
    assert not any(tmp_path.iterdir()), "--help started the lesson"


BAD_OPTIONS = {  # {tmp}: the test's folder, which holds a_file
    "unknown device": (["--device", "tpu"], "unknown device 'tpu'"),
    "cuda without a GPU": (["--device", "cuda"], "'cuda'"),
    "missing data": (["--data", "{tmp}/nowhere"], "nowhere does not exist"),
    "not a data set": (["--data", "{tmp}"], "do not know how to read"),
    "out is a file": (["--out", "{tmp}/a_file"], "a_file"),
    "no seeds": (["--seeds", "0"], "--seeds must be 1 or more, got 0"),
}


@pytest.mark.parametrize("case", BAD_OPTIONS)
def test_a_bad_option_ends_the_lesson_with_one_line_and_status_2(case, tmp_path):
    if case == "cuda without a GPU" and ta.backend.gpu_available():
        pytest.skip("a GPU is there: --device cuda is no mistake here")
    (tmp_path / "a_file").write_text("not a folder")
    args, expected = BAD_OPTIONS[case]
    args = [a.format(tmp=tmp_path) for a in args]
    run = run_lesson(LESSON, "--out", str(tmp_path / "out"), *args)
    assert run.returncode == 2, f"{args}: status {run.returncode}\n{run.stderr[-3000:]}"
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{LESSON.name}: error: "), f"{args}: not one line:\n{run.stderr}"
    assert expected in lines[0], f"{args}: the message does not say {expected!r}: {lines[0]}"
    assert "this will run" not in run.stdout.lower(), f"{args}: the lesson started before the check"


def test_an_unknown_option_is_refused_not_ignored(tmp_path):
    run = run_lesson(LESSON, "--quik", "--out", str(tmp_path))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].endswith("unrecognized arguments: --quik"), run.stderr


def test_options_come_from_the_environment_before_the_command_line(tmp_path):
    run = run_lesson(LESSON, "--out", str(tmp_path), env={"TINYALEX_LESSON_ARGS": "--device tpu"})
    assert run.returncode == 2 and "unknown device 'tpu'" in run.stderr, run.stderr
    run = run_lesson(LESSON, "--device", "cpu", "--data", str(tmp_path / "nowhere"),
                     env={"TINYALEX_LESSON_ARGS": "--device tpu"})
    assert "nowhere does not exist" in run.stderr, f"the command line's --device did not win:\n{run.stderr}"
