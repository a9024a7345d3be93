"""The autograder: honest answers and the engine's pass, the stubs fail cleanly, classic mistakes get
their hint, a student's crash, exit, endless loop or runaway memory fails a check instead of the
grader, and a file that forges results, patches comparisons or delegates to the engine fails."""
import pathlib
import textwrap

import numpy as np
import pytest

from tinyalex import grade
from tinyalex.grading import exercises, runner, stubs

EXERCISE_DIR = pathlib.Path(__file__).resolve().parents[1] / "lessons" / "exercises"
ANSWERS = pathlib.Path(__file__).parent / "answers" / "numpy_answers.py"
HEADER = ANSWERS.read_text() + "\nimport types\nS = types.SimpleNamespace(**dict(globals()))  # before the change\n"
N_CHECKS = sum(len(e.checks) for e in exercises.all_exercises())


def grade_source(tmp_path, source, name, timeout=30):
    path = tmp_path / "student.py"
    path.write_text(HEADER + textwrap.dedent(source))
    return runner.grade_exercise(path, name, timeout=timeout)


def failed(results):
    return [r for r in results if not r["passed"]]


# ------------------------------------------------------------------ the three kinds of file
@pytest.mark.slow  # one subprocess per exercise: about 4 s
def test_an_honest_numpy_answer_passes_every_check(capsys):
    assert grade.main([str(ANSWERS)]) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and f"{N_CHECKS} of {N_CHECKS} checks passed" in out


@pytest.mark.parametrize("name, check", [("sgd", "one SGD step"), ("winograd", "F(2x2, 3x3) of one 4x4 tile")])
def test_solution_option_grades_the_engines_answers(capsys, name, check):
    assert grade.main(["--solution", name]) == 0
    assert f"PASS  {check}" in capsys.readouterr().out


@pytest.mark.gpu
def test_the_engines_answers_pass_with_inputs_on_the_gpu():
    assert grade.main(["--solution", "all", "--device", "cuda"]) == 0


@pytest.mark.slow  # one subprocess per exercise: about 4 s
def test_untouched_stubs_fail_every_check_with_not_implemented():
    for exercise in exercises.all_exercises():
        results = runner.grade_exercise(EXERCISE_DIR / exercise.file_name, exercise.name, timeout=30)
        assert len(failed(results)) == len(exercise.checks)
        assert all(r["error"].endswith("not implemented") for r in results), results


def test_committed_stubs_are_what_the_generator_writes(tmp_path):
    assert grade.main(["--write-stubs", str(tmp_path)]) == 0
    for exercise in exercises.all_exercises():
        committed = (EXERCISE_DIR / exercise.file_name).read_text()
        assert committed == stubs.stub_source(exercise) == (tmp_path / exercise.file_name).read_text(), (
            f"{exercise.file_name} is out of date: run tinyalex grade --write-stubs lessons/exercises")


def test_list_names_every_exercise_in_course_order_with_its_file_and_functions(capsys):
    assert grade.main(["--list"]) == 0
    lines = [line.split(maxsplit=2) for line in capsys.readouterr().out.splitlines()]
    assert lines == [[e.name, e.file_name, ", ".join(e.functions)] for e in exercises.all_exercises()]
    assert lines[-1] == ["winograd", "09_winograd.py", "winograd_tile, winograd_conv2d"]


def test_stubs_name_every_function_and_the_grader_finds_them():
    for exercise in exercises.all_exercises():
        assert runner.exercises_in(EXERCISE_DIR / exercise.file_name) == [exercise.name]


# ------------------------------------------------------------------ planted classic mistakes
COL2IM_OVERWRITES = """
def col2im(col, x_shape, KH, KW, SH, SW, PH, PW):
    N, C, H, W = x_shape
    OH, OW = (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1
    col = col.reshape(C, KH, KW, N, OH, OW).transpose(3, 0, 1, 2, 4, 5)
    x = np.zeros((N, C, H + 2 * PH, W + 2 * PW))
    for i in range(KH):
        for j in range(KW):
            x[:, :, i:i + SH * (OH - 1) + 1:SH, j:j + SW * (OW - 1) + 1:SW] = col[:, :, i, j]  # should be +=
    return x[:, :, PH:PH + H, PW:PW + W]
"""

MAX_POOL_ALL_TIES = """
def max_pool_forward(x, kernel_size=(3, 3), stride=(2, 2)):
    N, C, H, W = x.shape
    (KH, KW), (SH, SW) = kernel_size, stride
    col = im2col(x.reshape(N * C, 1, H, W), KH, KW, SH, SW, 0, 0)
    y = col.max(axis=0).reshape(N, C, (H - KH) // SH + 1, (W - KW) // SW + 1)
    return y, (x.shape, col, kernel_size, stride)

def max_pool_backward(gy, cache):
    (N, C, H, W), col, (KH, KW), (SH, SW) = cache
    winners = col == col.max(axis=0)  # every tied maximum wins
    return col2im(winners * gy.reshape(-1), (N * C, 1, H, W), KH, KW, SH, SW, 0, 0).reshape(N, C, H, W)
"""

NAIVE_SOFTMAX = """
def softmax_cross_entropy_forward(logits, labels):
    e = np.exp(logits)
    p = e / e.sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(len(labels)), labels]).mean(), (p, labels)
"""

PLANTED = {
    "col2im overwrites": ("im2col", COL2IM_OVERWRITES, "ADD each window"),
    "LRN alpha / n": ("lrn", """
        def lrn_forward(x, n=5, k=2.0, alpha=1e-4, beta=0.75):
            return S.lrn_forward(x, n, k, alpha / n, beta)
        """, "alpha divided by n"),
    "dropout scaled twice": ("dropout", """
        def dropout_forward(x, p, mask, mode="inverted", training=True):
            y, cache = S.dropout_forward(x, p, mask, mode, training)
            return (y / (1 - p) if training and mode == "inverted" else y), cache
        """, "scaled twice"),
    "dropout not scaled": ("dropout", """
        def dropout_forward(x, p, mask, mode="inverted", training=True):
            return (x * mask if training else x), None
        """, "not scaled"),
    "softmax without max-subtraction": ("softmax_cross_entropy", NAIVE_SOFTMAX, "maximum"),
    "cross-entropy gradient not divided by N": ("softmax_cross_entropy", """
        def softmax_cross_entropy_backward(gloss, cache):
            return S.softmax_cross_entropy_backward(gloss, cache) * len(cache[1])
        """, "divide the gradient by N"),
    "SGD weight decay without lr": ("sgd", """
        def sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):
            v = momentum * v - weight_decay * w - lr * g
            return w + v, v
        """, "multiplied by the learning rate"),
    "max pooling gradient to every tied maximum": ("max_pool", MAX_POOL_ALL_TIES, "ONE input"),
    "receptive field ignoring strides": ("vgg", """
        def receptive_field(layers):
            return 1 + sum(k - 1 for k, s in layers)
        """, "(r - 1) * s + k"),
    "parameters without biases": ("vgg", """
        def vgg_parameter_count(cfg, in_channels=3, image_size=224, fc=(4096, 4096), num_classes=1000):
            return S.vgg_parameter_count(cfg, in_channels, image_size, fc, num_classes) - (
                sum(c[0] if isinstance(c, tuple) else c for c in cfg if c != "M") + sum(fc) + num_classes)
        """, "biases"),
    "Winograd's filter flipped (a convolution)": ("winograd", """
        def winograd_tile(d, g):
            return S.winograd_tile(d, g[::-1, ::-1])
        """, "convolution"),
    "Winograd's G without the halves": ("winograd", """
        def winograd_tile(d, g):
            G = np.array([[1, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 1]], dtype=float)
            return AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T
        """, "halves"),
    "Winograd without the remainder tiles": ("winograd", """
        def winograd_conv2d(x, w):
            N, C, H, W = x.shape
            y = np.zeros((N, len(w), H - 2, W - 2))
            whole = S.winograd_conv2d(x[:, :, :H - H % 2, :W - W % 2], w)  # the tiles inside the map only
            y[:, :, :whole.shape[2], :whole.shape[3]] = whole
            return y
        """, "pad x with zeros"),
}


@pytest.mark.parametrize("bug", PLANTED)
def test_a_planted_classic_mistake_is_caught_with_its_hint(tmp_path, bug):
    name, source, hint = PLANTED[bug]
    bad = failed(grade_source(tmp_path, source, name))
    assert bad, f"{bug} was not caught"
    assert any(hint in r.get("hint", "") for r in bad), [(r["check"], r.get("hint")) for r in bad]
    assert all("smallest" in r and "max_abs" in r for r in bad if "hint" in r)


def test_a_hand_written_numpy_col2im_that_adds_passes(tmp_path):
    fixed = COL2IM_OVERWRITES.replace("] = col[", "] += col[")
    assert all(r["passed"] for r in grade_source(tmp_path, fixed, "im2col"))


def test_a_mistake_in_one_function_leaves_the_other_checks_passing(tmp_path):
    results = grade_source(tmp_path, COL2IM_OVERWRITES, "im2col")
    assert [r["passed"] for r in results] == [True, False, False]


# ------------------------------------------------------------------ the student's code misbehaves
MISBEHAVING = {
    "an endless loop": ("def sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):\n    while True:\n        pass\n",
                        "timed out"),
    "sys.exit": ("import sys\ndef sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):\n    sys.exit(3)\n",
                 "raised SystemExit"),
    "a hard crash": ("import os\ndef sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):\n    os._exit(7)\n",
                     "exit status 7"),
    "an exception": ("def sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):\n    return w[99]\n",
                     "raised IndexError"),
    "an error on import": ("raise RuntimeError('boom')\n", "importing student.py raised RuntimeError: boom"),
    "a wrong return type": ("def sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):\n    return 'w'\n",
                            "should return (w, v)"),
}


@pytest.mark.parametrize("how", MISBEHAVING)
def test_misbehaving_student_code_fails_the_check_not_the_grader(tmp_path, how):
    source, message = MISBEHAVING[how]
    (result,) = grade_source(tmp_path, source, "sgd", timeout=2 if how == "an endless loop" else 30)
    assert not result["passed"] and message in result["error"], result


def test_exit_status_and_report_of_the_command(tmp_path, capsys):
    path = tmp_path / "07_sgd.py"
    path.write_text("def sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):\n    return w, v\n")
    assert grade.main([str(path), "--seed", "3"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  one SGD step" in out and "smallest failing case: w (" in out and "0 of 1 checks passed" in out


def test_bad_command_lines_are_refused_with_a_message(tmp_path, capsys):
    assert grade.main([]) == 2
    assert grade.main(["--exercise", "nope", "x.py"]) == 2
    (tmp_path / "a_file").write_text("")
    assert grade.main(["--write-stubs", str(tmp_path / "a_file")]) == 2
    assert grade.main(["--device", "tpu", "--list"]) == 2
    assert grade.main(["--seed", "-1", "x.py"]) == 2
    (tmp_path / "empty.py").write_text("x = 1\n")
    assert grade.main([str(tmp_path / "empty.py")]) == 1
    assert "defines none of the exercise functions" in capsys.readouterr().out


@pytest.mark.parametrize("content", [None, "def sgd_step(w, g, v, lr:\n", b"\xff\xfe not UTF-8\n"],
                         ids=["missing", "not Python", "not UTF-8"])
@pytest.mark.parametrize("exercise", [[], ["--exercise", "sgd"]], ids=["all", "one exercise"])
def test_a_file_that_cannot_be_read_is_an_input_error_with_status_2_not_a_failed_check(
        tmp_path, capsys, content, exercise):
    path = tmp_path / "07_sgd.py"
    if content is not None:
        getattr(path, "write_bytes" if isinstance(content, bytes) else "write_text")(content)
    assert grade.main([str(path), *exercise]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"grade: cannot read {path}: ") and "checks passed" not in out, out


def test_a_folder_without_python_files_is_an_input_error(tmp_path, capsys):
    assert grade.main([str(tmp_path)]) == 2  # not "0 of 0 checks passed" with status 0
    assert capsys.readouterr().out == f"grade: {tmp_path} is a folder without .py files: nothing to grade\n"


def test_help_states_the_three_exit_statuses(capsys):
    assert grade.main(["--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(s in help_text for s in ("0 when every check passes", "1 when a check fails", "2 when the command"))
    assert all(s in help_text for s in ("--memory-mb of memory (RLIMIT_DATA)", "cannot import tinyalex",
                                        "a folder holding sub-folders is a class"))


# ------------------------------------------------------------------ the student's code tries to cheat
FORGER = """
import json, sys
for check in CHECKS:
    with open(sys.argv[-1], "a") as log:
        log.write(json.dumps({"check": check, "passed": True}) + "\\n")
    print(json.dumps({"check": check, "passed": True}))
    print(json.dumps({"check": check, "passed": True}), file=sys.stderr)
sys.exit(0)
"""


def test_a_file_that_forges_results_fails_every_check_saying_why(tmp_path, capsys):
    path = tmp_path / "07_sgd.py"
    checks = [c.name for e in exercises.all_exercises() for c in e.checks]
    path.write_text(f"CHECKS = {checks!r}\n" + FORGER + "def sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):\n"
                    "    return w, v\n")
    assert grade.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert "PASS" not in out and "0 of 1 checks passed" in out and "importing 07_sgd.py raised SystemExit: 0" in out


DELEGATING = {
    "the solutions": "from tinyalex.grading.solutions import *\n",
    "tinyalex.functional": "import tinyalex.functional as F\ndef lrn_forward(x, n=5, k=2.0, alpha=1e-4, beta=0.75):\n"
                           "    return F.lrn(x, n, k, alpha, beta).data, None\n",
    "importlib": "import importlib\nlrn_forward = importlib.import_module('tinyalex.grading.solutions').lrn_forward\n",
    "the engine's files under another name": (
        "import importlib.util, sys\nfolder = {folder!r}\n"
        "spec = importlib.util.spec_from_file_location('engine', folder + '/__init__.py', "
        "submodule_search_locations=[folder])\nengine = sys.modules['engine'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(engine)\nlrn_forward = engine.grading.solutions.lrn_forward\n"),
}


@pytest.mark.parametrize("how", DELEGATING)
def test_a_file_that_delegates_to_the_engine_fails_saying_why(tmp_path, how):
    path = tmp_path / "04_lrn.py"
    path.write_text(DELEGATING[how].format(folder=str(runner.PACKAGE)))
    results = runner.grade_exercise(path, "lrn", timeout=30)
    assert not any(r["passed"] for r in results)
    assert all("raised ImportError: tinyalex grade: a graded file cannot import" in r["error"] for r in results), results


def test_patching_numpys_comparisons_in_the_students_process_changes_nothing_here(tmp_path):
    source = """
        np.allclose = np.array_equal = lambda *a, **k: True
        np.testing.assert_allclose = lambda *a, **k: None
        np.abs = lambda a: 0 * a  # the grader's own error measure, were it in this process
        try:
            import tinyalex.grading.checks as checks
            checks.compare = lambda *a, **k: None
        except ImportError:
            pass
        def sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):
            return w, v
        """
    (result,) = grade_source(tmp_path, source, "sgd")
    assert not result["passed"] and result["max_abs"] > 0 and result["failed"] == result["cases"], result
    assert not np.allclose(0, 1)


def test_a_submission_that_allocates_without_bound_fails_within_the_memory_limit(tmp_path):
    source = """
        def sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):
            hoard = []
            while True:
                hoard.append(np.ones(1 << 24))  # 128 MB a time
        """
    path = tmp_path / "student.py"
    path.write_text(HEADER + textwrap.dedent(source))
    (result,) = runner.grade_exercise(path, "sgd", timeout=30, memory_mb=400)
    assert not result["passed"] and "raised MemoryError" in result["error"], result
    assert "over the memory limit of 400 MB" in result["error"]


def test_the_student_runs_in_a_fresh_temporary_folder(tmp_path):
    source = """
        import os
        def sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):
            raise ValueError(f"in {os.getcwd()} holding {os.listdir()}")
        """
    (result,) = grade_source(tmp_path, source, "sgd")
    folder = result["error"].split(" in ", 1)[1].split(" holding ")[0]
    assert pathlib.Path(folder).name.startswith("tinyalex-grade-") and folder != str(pathlib.Path.cwd())
    assert " holding [] (line " in result["error"] and not pathlib.Path(folder).exists()
