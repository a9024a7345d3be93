"""Every lesson runs from start to end with --quick on the CPU and leaves its figures and its
measured figures (``NN_results.json``) behind.

Each lesson runs in its own process, exactly as a student runs it (``python lessons/NN_topic.py
--quick``), so a lesson that only works inside the test process, or leaks state into the next one,
fails here. New lessons are found by their file name, ``lessons/NN_*.py``.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
SCRIPTS = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
TIMEOUT_S = 300  # a quick run takes seconds (more on a busy machine); this only stops a hung one


# what each lesson that trains records of its runs in NN_results.json, besides the keys every lesson has
RECORDED = {"02": {"settings", "sweep", "lr", "runs", "summary", "trained"},
            "04": {"settings", "sweep", "lr", "runs", "summary", "divisor", "trained"},
            "05": {"settings", "sweep", "lr", "runs", "summary", "trained"},
            "07": {"final", "trained"}, "08": {"final", "thinned", "trained"}, "11": {"final", "trained"},
            "12": {"parameters", "multi_scale", "trained"}}


def test_lessons_are_found():
    assert len(SCRIPTS) >= 7, f"expected the lessons 00-06 at least in {LESSONS}, found {[s.name for s in SCRIPTS]}"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_lesson_runs_quick(script, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    run = subprocess.run([sys.executable, script.name, "--quick", "--out", str(tmp_path)], cwd=LESSONS, env=env,
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    assert run.returncode == 0, f"{script.name} --quick failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert "this will run" in run.stdout.lower(), f"{script.name} does not say what it will run"
    figures = list(tmp_path.rglob("*.png"))
    assert figures, f"{script.name} --quick saved no figure in {tmp_path}"
    assert all(f.stat().st_size > 1000 for f in figures), f"{script.name}: an empty figure among {figures}"
    results = json.loads((tmp_path / f"{script.name[:2]}_results.json").read_text())
    assert results["lesson"] == script.name[:2] and results["mode"] == "quick" and results["comparable"] is False
    assert results["seconds"] > 0, f"{script.name}: the results file was not completed by lesson.done()"
    assert RECORDED.get(script.name[:2], set()) <= set(results), f"{script.name} records only {sorted(results)}"
    for name, run_ in results.get("trained", {}).items():  # every lesson.train run, epoch by epoch
        assert len(run_["train_errors"]) == len(run_["test_errors"]) >= 1 and run_["lr"] > 0, name
    assert "far too short to compare" in run.stdout, f"{script.name} --quick does not warn that it compares nothing"


def test_lesson_02_records_the_race_to_25_percent_and_a_rerun_continues_its_runs(tmp_path):
    def lesson_02():
        run = subprocess.run([sys.executable, "02_relu_vs_tanh.py", "--quick", "--out", str(tmp_path)], cwd=LESSONS,
                             env={**os.environ, "MPLBACKEND": "Agg"}, capture_output=True, text=True, timeout=TIMEOUT_S)
        assert run.returncode == 0, run.stderr[-3000:]
        return run.stdout, json.loads((tmp_path / "02_results.json").read_text())

    first, results = lesson_02()
    assert "continuing" not in first
    again, rerun = lesson_02()  # the same command again: every run is found and none trains again
    assert again.count("(continuing ") == again.count("--- training ") == 4
    assert rerun["runs"] == results["runs"] and rerun["sweep"] == results["sweep"]
    assert set(results["lr"]) == set(results["sweep"]) == {"relu", "tanh"}
    for name in ("relu", "tanh"):
        (record,) = results["runs"][name]
        assert len(record["train_errors"]) == len(record["test_errors"]) == results["settings"]["cap_epochs"]
        assert {"epochs_to_25", "epochs_to_50", "seed", "seconds"} <= set(record)
    assert set(results["summary"]) == {"relu", "tanh", "ratio_25", "ratio_50", "common_level"}


# the lessons that teach a layer or rule a graded exercise asks for, and that exercise's file
EXERCISE_OF = {"03": "02_conv2d.py", "04": "04_lrn.py", "05": "03_max_pool.py", "08": "05_dropout.py",
               "09": "07_sgd.py", "12": "08_vgg.py", "13": "09_winograd.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_a_lesson_with_an_exercise_ends_with_an_exercises_cell_naming_its_file_and_grade_command(script):
    cells = script.read_text().split("# %%")
    exercise = EXERCISE_OF.get(script.name[:2])
    if exercise is None:
        assert "## Exercises" not in script.read_text(), f"{script.name} has an Exercises cell but no exercise"
        return
    assert cells[-1].strip() == "lesson.done()", f"{script.name}: lesson.done() is not a cell of its own at the end"
    last = " ".join(line.removeprefix("#").strip() for line in cells[-2].strip().splitlines())
    assert last.startswith("[markdown] ## Exercises"), f"{script.name}: no Exercises cell before lesson.done()"
    assert (LESSONS / "exercises" / exercise).is_file(), f"{script.name} names a missing exercise {exercise}"
    assert f"`lessons/exercises/{exercise}`" in last and f"`tinyalex grade {exercise}`" in last, last
