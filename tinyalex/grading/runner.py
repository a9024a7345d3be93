"""Grade student files: one subprocess per exercise with a time limit, then a per-check report.

The student's code never runs in the grader's own process, so an exception, ``sys.exit``, a crash
or an endless loop fails the check it happened in instead of stopping the grader.
"""
import ast
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from . import exercises


def exercises_in(path):
    """Names of the exercises that the file defines at least one function of (read without running it)."""
    tree = ast.parse(pathlib.Path(path).read_text(encoding="utf-8"), filename=str(path))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    defined |= {a.asname or a.name for node in tree.body if isinstance(node, ast.ImportFrom) for a in node.names}
    if "*" in defined:
        return list(exercises.NAMES)
    return [e.name for e in exercises.all_exercises() if defined & set(e.functions)]


def grade_exercise(path, name, seed=0, device="cpu", timeout=60.0):
    """Results (dicts, one per check, in order) of exercise ``name`` on the file ``path``."""
    exercise = exercises.get(name)
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "results.jsonl")
        command = [sys.executable, "-m", "tinyalex.grading.worker", str(path), name, str(seed), device, log]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
            ended = None if done.returncode == 0 else _died(done.returncode, done.stderr)
        except subprocess.TimeoutExpired:
            ended = f"timed out after {timeout:g} s (an endless loop?)"
        records = [json.loads(line) for line in pathlib.Path(log).read_text(encoding="utf-8").splitlines()
                   if line.strip()] if os.path.exists(log) else []
    return _collect(exercise, records, ended)


def _died(returncode, stderr):
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
    return f"the process stopped (exit status {returncode}): {tail}"


def _collect(exercise, records, ended):
    results = {r["check"]: r for r in records if "check" in r}
    started = [r["start"] for r in records if "start" in r]
    failure = next((r["import_error"] for r in records if "import_error" in r), None)
    out = []
    for check in exercise.checks:
        if check.name in results:
            out.append(results[check.name])
        elif failure or ended:
            reason = failure or (ended if check.name in started else f"not run: an earlier check {ended}")
            out.append({"check": check.name, "passed": False, "error": reason})
        else:
            out.append({"check": check.name, "passed": False, "error": "no result (the worker wrote none)"})
    return out


def report(file_name, exercise, results, write):
    """Write the report for one exercise of one file; ``write`` takes one line."""
    write(f"{file_name}: exercise {exercise.number} '{exercise.name}' ({exercise.title})")
    for r in results:
        cases = f"{r['cases'] - r['failed']} of {r['cases']} cases" if "cases" in r else ""
        write(f"  {'PASS' if r['passed'] else 'FAIL'}  {r['check']}" + (f"  [{cases}]" if cases else ""))
        if r["passed"]:
            continue
        if "smallest" in r:
            write(f"        smallest failing case: {r['smallest']}")
        if "error" in r:
            write(f"        {r['error']}")
        if "max_abs" in r:
            detail = f"{r['detail']}; " if r.get("detail") else ""
            write(f"        {detail}max abs error {r['max_abs']:.3g}, max rel error {r['max_rel']:.3g}")
        if "hint" in r:
            write(f"        hint: {r['hint']}")
