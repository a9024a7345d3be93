"""Run one exercise's checks on one student file; ``runner`` starts this in a subprocess.

    python -m tinyalex.grading.worker FILE EXERCISE SEED DEVICE LOG

Results go to LOG as JSON lines, one ``{"start": check}`` before and the result after each check,
so that when the student's code loops forever or kills the process the runner still knows which
check it was in, and keeps the results of the checks before it.
"""
import importlib.util
import json
import pathlib
import sys

import numpy as np

from . import exercises
from .checks import Student, run_check


def load(path):
    """Import a Python file as a fresh module named after it (its top level runs here)."""
    path = pathlib.Path(path)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv):
    path, name, seed, device, log_path = argv
    exercise = exercises.get(name)
    with open(log_path, "a", encoding="utf-8") as log:
        def emit(record):
            log.write(json.dumps(record) + "\n")
            log.flush()

        try:
            student = Student(load(path))
        except (Exception, SystemExit) as e:
            emit({"import_error": f"importing {pathlib.Path(path).name} raised {type(e).__name__}: {e}"})
            return 0
        for number, check in enumerate(exercise.checks):
            emit({"start": check.name})
            try:
                result = run_check(check, student, np.random.default_rng([int(seed), number]), device)
            except (Exception, SystemExit) as e:  # e.g. an engine function that is missing
                result = {"check": check.name, "passed": False, "error": f"the grader failed: {type(e).__name__}: {e}"}
            emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
