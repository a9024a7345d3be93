"""``tinyalex grade``: check a student's exercise files, or a whole class, against the engine.

    tinyalex grade FILE... [--exercise NAME] [--device cpu|cuda] [--seed N] [--timeout S] [--memory-mb M]
    tinyalex grade CLASS/ [--class] [--out DIR] [--jobs N] [same options]   # a gradebook for a class
    tinyalex grade --solution NAME|all        # grade the engine's own answers (tests the grader)
    tinyalex grade --write-stubs DIR          # write fresh exercise files
    tinyalex grade --list                     # the exercises and their functions

A FILE may also be a folder of one student's .py files. A single folder that holds sub-folders is a
class (``CLASS_RULE``): each sub-folder, and each .py file beside them, is one student; ``--class``
makes a folder of .py files a class of one-file submissions. The student's functions run in their
own process with limits (``runner``). The exit status (``EXIT_STATUS``, also in ``--help``) tells a
course's CI failed answers (1) apart from input that could not be graded (2).
"""
import argparse
import os
import pathlib

from . import backend
from .grading import exercises, gradebook, runner, stubs

SOLUTIONS = pathlib.Path(__file__).parent / "grading" / "solutions.py"  # imported only by its worker
EXIT_STATUS = ("exit status: 0 when every check passes (for a class: when the gradebook is written); 1 when a "
               "check fails or a file defines none of the exercise functions; 2 when the command line or a FILE "
               "is wrong (missing, unreadable, not Python)")
CLASS_RULE = ("a single FILE that is a folder holding sub-folders is a class: each sub-folder (or .py file beside "
              "them) is one student's submission; --class says so for a folder of .py files")
LIMITS = ("each check of a student's file runs in a separate process, in a fresh temporary folder, with --timeout "
          "seconds and --memory-mb of memory (RLIMIT_DATA); the file cannot import tinyalex or "
          + ", ".join(runner.BLOCKED[1:]))


def build_parser():
    p = argparse.ArgumentParser(prog="tinyalex grade", description="Grade exercise files against the engine. "
                                + LIMITS + ".", epilog=f"{CLASS_RULE}. {EXIT_STATUS}")
    p.add_argument("files", nargs="*", help="student files or folders of them, or one class folder")
    p.add_argument("--class", dest="is_class", action="store_true", help="the one folder given is a class")
    p.add_argument("--out", help="where a class's gradebook and reports go (default: CLASS-grades beside it)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="students graded at the same time (default: the number of CPUs)")
    p.add_argument("--exercise", choices=exercises.NAMES, help="grade only this exercise")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]: where inputs live")
    p.add_argument("--seed", type=int, default=0, help="seed of the random cases (default 0)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per check (default 60)")
    p.add_argument("--memory-mb", type=int, default=runner.MEMORY_MB,
                   help=f"memory limit of the student's process, in MB (RLIMIT_DATA; default {runner.MEMORY_MB})")
    p.add_argument("--solution", metavar="NAME", choices=exercises.NAMES + ("all",),
                   help="grade the engine's own answers for exercise NAME (or all)")
    p.add_argument("--write-stubs", metavar="DIR", help="write the exercise files into DIR and stop")
    p.add_argument("--list", action="store_true", help="list the exercises and stop")
    return p


def main(argv=None):
    """Entry point of ``tinyalex grade`` (``argv`` without the subcommand); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if args.seed < 0 or args.timeout <= 0 or args.memory_mb <= 0 or args.jobs <= 0:
        print(f"grade: --seed must be >= 0, --timeout, --memory-mb and --jobs > 0, got {args.seed}, "
              f"{args.timeout:g}, {args.memory_mb} and {args.jobs}")
        return 2
    try:
        args.device = backend.parse_device(args.device)
        backend.module_for(args.device)  # a missing GPU is said once, here, not in every check
    except (ValueError, RuntimeError) as e:
        print(f"grade: {e}")
        return 2
    if args.list:
        for e in exercises.all_exercises():
            print(f"{e.name:<22} {e.file_name:<30} {', '.join(e.functions)}")
        return 0
    if args.write_stubs:
        try:
            paths = stubs.write_stubs(args.write_stubs)
        except OSError as e:
            print(f"grade: cannot write the exercise files into {args.write_stubs}: {e}")
            return 2
        for path in paths:
            print(f"wrote {path}")
        return 0
    if _is_class(args):
        return _grade_class(args)
    if args.is_class:
        print("grade: --class wants exactly one FILE, the class folder")
        return 2
    if args.solution:
        names = exercises.NAMES if args.solution == "all" else (args.solution,)
        jobs = [(SOLUTIONS, list(names))]
    elif args.files:
        try:
            jobs = [(path, [args.exercise] if args.exercise else names) for path, names in _read(args.files)]
        except ValueError as e:
            print(f"grade: {e}")
            return 2
    else:
        parser.print_usage()
        print("grade: give a FILE, --solution NAME, --write-stubs DIR or --list")
        return 2
    passed = total = 0
    for path, names in jobs:
        if not names:
            print(f"{path.name}: defines none of the exercise functions (see tinyalex grade --list)")
            total += 1
        for name in names:
            results = runner.grade_exercise(path, name, args.seed, args.device, args.timeout, args.memory_mb,
                                            engine=path == SOLUTIONS)
            runner.report(path.name, exercises.get(name), results, print)
            passed, total = passed + sum(r["passed"] for r in results), total + len(results)
    print(f"{passed} of {total} checks passed")
    return 0 if passed == total else 1


def _is_class(args):
    folder = pathlib.Path(args.files[0]) if len(args.files) == 1 else None
    return bool(folder and folder.is_dir() and (args.is_class or any(p.is_dir() for p in folder.iterdir())))


def _grade_class(args):
    """Grade a class folder into a gradebook; one line per student on stdout."""
    folder = pathlib.Path(args.files[0])
    out = pathlib.Path(args.out) if args.out else folder.resolve().parent / f"{folder.resolve().name}-grades"
    if not gradebook.students(folder):
        print(f"grade: {folder} holds no sub-folders or .py files: no students to grade")
        return 2
    if out.resolve().is_relative_to(folder.resolve()):
        print(f"grade: --out {out} is inside the class folder {folder}, where the next run would grade it as a "
              "student; give a folder outside it")
        return 2
    settings = dict(seed=args.seed, device=args.device, timeout=args.timeout, memory_mb=args.memory_mb)
    try:
        rows = gradebook.grade_class(folder, out, [args.exercise] if args.exercise else None, settings, args.jobs)
    except OSError as e:
        print(f"grade: cannot write the gradebook into {out}: {e}")
        return 2
    for student in dict.fromkeys(r["student"] for r in rows):
        mine = [r for r in rows if r["student"] == student]
        print(f"{student}: {sum(r['passed'] for r in mine)} of {sum(r['checks'] for r in mine)} checks passed")
    print(f"wrote {out / 'gradebook.csv'}, {out / 'gradebook.json'} and {len(set(r['student'] for r in rows))} "
          f"reports in {out / 'reports'}")
    return 0


def _read(paths):
    """(file, the exercises it defines) for each student file, folders expanded to their .py files.

    Every file is read and parsed first, even when ``--exercise`` names what to grade, so a missing,
    unreadable or unparsable FILE stops the command with status 2 (the input is wrong) instead of
    failing checks (status 1, the answers are wrong), whichever options came with it. Raises
    ValueError naming the file and the reason.
    """
    files = []
    for p in map(pathlib.Path, paths):
        if not p.exists():
            raise ValueError(f"cannot read {p}: no such file or folder")
        found = sorted(p.glob("*.py")) if p.is_dir() else [p]
        if not found:
            raise ValueError(f"{p} is a folder without .py files: nothing to grade")
        files.extend(found)
    jobs = []
    for path in files:
        try:
            jobs.append((path, runner.exercises_in(path)))
        except (OSError, SyntaxError, ValueError) as e:  # UnicodeDecodeError is a ValueError
            raise ValueError(f"cannot read {path}: {e}") from None
    return jobs
