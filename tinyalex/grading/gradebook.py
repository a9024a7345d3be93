"""Grade a whole class: one submission per student, a gradebook and a report per student.

A class folder holds one entry per student: a sub-folder (the student's .py files) or a single .py
file. Every student gets one row per exercise, also for an exercise that none of their files defines
(status "missing"), so the gradebook is a full table. A submission that cannot be read, crashes, hangs
or forges is a row of failures; nothing a student does stops the run. Students are graded in parallel
processes (each of which starts its own workers); the files are written atomically at the end.
"""
import concurrent.futures
import csv
import io
import json
import pathlib

from . import exercises, runner
from ..io import atomic_write

COLUMNS = ("student", "exercise", "status", "passed", "checks", "file", "message")


def students(folder):
    """(name, its .py files) for every student entry of ``folder``, sorted by name (hidden entries and
    ``__pycache__`` are not students)."""
    entries = sorted(p for p in pathlib.Path(folder).iterdir()
                     if (p.is_dir() or p.suffix == ".py") and not p.name.startswith((".", "__")))
    return [(p.name if p.is_dir() else p.stem, sorted(p.glob("*.py")) if p.is_dir() else [p]) for p in entries]


def defined(files):
    """(exercise -> the first file that defines it, problems reading the files as one message)."""
    found, problems = {}, []
    for path in files:
        try:
            for name in runner.exercises_in(path):
                found.setdefault(name, path)
        except (OSError, SyntaxError, ValueError) as e:  # UnicodeDecodeError is a ValueError
            problems.append(f"cannot read {path.name}: {e}")
    return found, "; ".join(problems)


def grade_student(name, files, names, settings):
    """(rows, report text) of one student for the exercises ``names``; ``settings`` go to grade_exercise."""
    found, problems = defined(files)
    rows, lines = [], [f"student {name}"] + ([f"  {problems}"] if problems else [])
    for exercise_name in names:
        exercise = exercises.get(exercise_name)
        if exercise_name not in found:
            message = problems or f"no file defines {', '.join(exercise.functions)}"
            rows.append(_row(name, exercise, None, "missing", [], message))
            lines.append(f"exercise {exercise.number} '{exercise.name}': missing ({message})")
            continue
        results = runner.grade_exercise(found[exercise_name], exercise_name, **settings)
        status = "pass" if all(r["passed"] for r in results) else "fail"
        first = next((r for r in results if not r["passed"]), {})
        message = first.get("error") or "; ".join(filter(None, (first.get("detail"), first.get("hint"))))
        rows.append(_row(name, exercise, found[exercise_name], status, results, message))
        runner.report(found[exercise_name].name, exercise, results, lines.append)
    passed, total = sum(r["passed"] for r in rows), sum(r["checks"] for r in rows)
    lines.append(f"{passed} of {total} checks passed")
    return rows, "\n".join(lines) + "\n"


def _row(student, exercise, path, status, results, message):
    return dict(student=student, exercise=exercise.name, status=status, passed=sum(r["passed"] for r in results),
                checks=len(exercise.checks), file=path.name if path else "", message=message, results=results)


def grade_class(folder, out, names, settings, jobs):
    """Grade every student of ``folder`` on ``names`` (None: every exercise any student defines), with
    ``jobs`` students at a time; write ``out``/gradebook.csv, gradebook.json and reports/NAME.txt.
    Returns the rows (dicts with the COLUMNS and each check's results)."""
    roster = students(folder)
    names = names or [n for n in exercises.NAMES if any(n in defined(files)[0] for _, files in roster)]
    pool = concurrent.futures.ProcessPoolExecutor(jobs) if jobs > 1 else None
    submit = pool.submit if pool else _now
    futures = [submit(grade_student, name, files, names, settings) for name, files in roster]
    rows, reports = [], {}
    for (name, _), future in zip(roster, futures):
        try:
            student_rows, reports[name] = future.result()
        except Exception as e:  # the grader's own failure on one student still leaves a row for them
            student_rows = [_row(name, exercises.get(n), None, "fail", [], f"the grader failed: {e}") for n in names]
            reports[name] = f"student {name}\n  the grader failed: {type(e).__name__}: {e}\n"
        rows += student_rows
    if pool:
        pool.shutdown()
    _write(pathlib.Path(out), rows, reports)
    return rows


def _now(fn, *args):
    """A finished future of ``fn(*args)`` (grading in this process when ``jobs`` is 1)."""
    future = concurrent.futures.Future()
    try:
        future.set_result(fn(*args))
    except Exception as e:
        future.set_exception(e)
    return future


def _write(out, rows, reports):
    table = io.StringIO()
    writer = csv.DictWriter(table, COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(out / "gradebook.csv", "w") as f:
        f.write(table.getvalue())
    with atomic_write(out / "gradebook.json", "w") as f:
        json.dump(rows, f, indent=1)
    for name, text in reports.items():
        with atomic_write(out / "reports" / f"{name}.txt", "w") as f:
            f.write(text)
