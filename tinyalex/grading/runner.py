"""Grade student files: the student's functions run in a worker process, everything else runs here.

The grader sends each case's inputs to the worker (``worker.py``) over a socket it owns, gets back
the raw outputs, computes the expected values with the engine and decides pass or fail itself; the
student's code never sees an expected value or a verdict, so nothing it prints, writes or patches in
its own process can turn into a PASS. Each check has a time limit and the worker a memory limit; an
exception, ``sys.exit``, a crash, an endless loop or a reply that is not the wire format fails the
check it happened in (a fresh worker then runs the next check) instead of stopping the grader.
"""
import ast
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import weakref

import numpy as np

from . import exercises, worker
from .checks import Student, run_check

MEMORY_MB = 2048
BLOCKED = ("tinyalex", "torch", "tensorflow", "jax", "chainer")  # the engine, and frameworks with these layers
PACKAGE = pathlib.Path(__file__).resolve().parents[1]
BOOT = ("import importlib.util as u; s = u.spec_from_file_location('tinyalex_grade_worker', {!r}); "
        "m = u.module_from_spec(s); s.loader.exec_module(m); m.main()").format(str(PACKAGE / "grading" / "worker.py"))
REFUSED = ("tinyalex grade: a graded file cannot import {name}: the engine (tinyalex) and the frameworks "
           + ", ".join(BLOCKED[1:]) + " hold the answers; write the exercise with NumPy")


class WorkerGone(Exception):
    """The worker stopped, timed out or sent something unreadable; the message says which."""


def exercises_in(path):
    """Names of the exercises that the file defines at least one function of (read without running it)."""
    tree = ast.parse(pathlib.Path(path).read_text(encoding="utf-8"), filename=str(path))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    defined |= {a.asname or a.name for node in tree.body if isinstance(node, ast.ImportFrom) for a in node.names}
    if "*" in defined:
        return list(exercises.NAMES)
    return [e.name for e in exercises.all_exercises() if defined & set(e.functions)]


class Worker:
    """One student process: a fresh temporary working folder, stdin the grader's socket, stdout and
    stderr to a temporary file (read only for the last line when it dies)."""

    def __init__(self, path, device, memory_mb, engine):
        self.name, self.deadline, self.timeout, self.freed, self.ready = path.name, 0.0, 0.0, [], None
        self.folder = tempfile.TemporaryDirectory(prefix="tinyalex-grade-")
        self.output = tempfile.TemporaryFile()
        self.sock, theirs = socket.socketpair()
        env = dict(os.environ)
        if engine:  # the engine's answers import the same tinyalex as the grader
            env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE.parent)] + env.get("PYTHONPATH", "").split(os.pathsep))
        self.process = subprocess.Popen([sys.executable, "-c", BOOT], stdin=theirs, stdout=self.output,
                                        stderr=subprocess.STDOUT, cwd=self.folder.name, env=env)
        theirs.close()
        worker.send(self.sock, dict(file=str(path.resolve()), device=device, memory_mb=memory_mb, engine=engine,
                                    blocked=BLOCKED, folder=str(PACKAGE), message=REFUSED))

    def start(self, timeout):
        """Give the next check ``timeout`` seconds; the first time, wait for the file's import."""
        self.deadline, self.timeout = time.monotonic() + timeout, timeout
        if self.ready is None:
            reply = self._reply(f"while importing {self.name}")
            if "import_error" in reply:
                raise WorkerGone(reply["import_error"])
            self.ready = reply

    def call(self, name, args, kwargs):
        """The worker's reply to calling the student's ``name(*args, **kwargs)`` (see ``Student``)."""
        freed, self.freed = self.freed, []
        try:
            worker.send(self.sock, {"call": name, "args": list(args), "kwargs": kwargs, "free": freed})
        except OSError:
            pass  # it died: _reply says how
        reply = self._reply(f"in {name}")
        if not isinstance(reply, dict) or not reply.keys() & {"result", "missing", "not_implemented", "raised"}:
            raise WorkerGone(f"the student's process sent an unexpected reply to {name}")
        return reply

    def _reply(self, doing):
        self.sock.settimeout(max(self.deadline - time.monotonic(), 1e-3))
        try:
            return worker.receive(self.sock, self._ref)
        except socket.timeout:
            raise WorkerGone(f"timed out after {self.timeout:g} s {doing} (an endless loop?)") from None
        except worker.ProtocolError as e:
            raise WorkerGone(f"the student's process sent an unreadable reply {doing}: {e}") from None
        except (EOFError, OSError):
            raise WorkerGone(self._died(doing)) from None

    def _ref(self, ref_id, type_name):
        ref = worker.Ref(ref_id, type_name)
        weakref.finalize(ref, self.freed.append, ref_id)  # the worker drops it with the next call
        return ref

    def _died(self, doing):
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return f"the student's process closed its connection {doing}"
        self.output.seek(max(0, self.output.seek(0, os.SEEK_END) - 4096))
        lines = self.output.read().decode(errors="replace").strip().splitlines()
        how = f"exit status {code}" if code >= 0 else f"signal {-code}"
        return f"the process stopped ({how}) {doing}: {lines[-1] if lines else 'no message'}"

    def close(self):
        self.sock.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.output.close()
        self.folder.cleanup()


def grade_exercise(path, name, seed=0, device="cpu", timeout=60.0, memory_mb=MEMORY_MB, engine=False):
    """Results (dicts, one per check, in order) of exercise ``name`` on the file ``path``.

    ``timeout`` seconds per check (the first one includes importing the file), ``memory_mb`` for the
    student's process; ``engine`` lets the file import tinyalex (the instructor's ``--solution``).
    """
    path, results, current, failure = pathlib.Path(path), [], None, None
    for number, check in enumerate(exercises.get(name).checks):
        if failure:
            results.append({"check": check.name, "passed": False, "error": failure})
            continue
        current = current or Worker(path, device, memory_mb, engine)
        try:
            current.start(timeout)
            result = run_check(check, Student(current.call, path.name, memory_mb),
                               np.random.default_rng([int(seed), number]), device)
        except WorkerGone as e:
            result = {"check": check.name, "passed": False, "error": str(e)}
            if current.ready is None:  # the file itself cannot be imported: the same for every check
                failure = str(e)
            current.close()
            current = None
        except Exception as e:  # e.g. an engine function that is missing
            result = {"check": check.name, "passed": False, "error": f"the grader failed: {type(e).__name__}: {e}"}
        results.append(result)
    if current:
        current.close()
    return results


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
