"""Grading a class folder: every student gets a row per exercise with the right verdict, a report,
and a submission that forges, hangs, crashes or delegates is a row of failures, not a stop."""
import csv
import json
import shutil

import pytest

from tinyalex import grade
from tinyalex.grading import gradebook

from test_grade import ANSWERS, FORGER, HEADER, MISBEHAVING

SGD = "def sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):\n"
CLASS = {  # student -> (their file's text, the status of their sgd row, words of its message)
    "honest": (ANSWERS.read_text(), "pass", ""),
    "buggy": (HEADER + SGD + "    v = momentum * v - weight_decay * w - lr * g\n    return w + v, v\n", "fail", "learning rate"),
    "forger": ("CHECKS = ['one SGD step follows the paper\\'s update rule (section 5)']\n" + FORGER + SGD
               + "    return w, v\n", "fail", "raised SystemExit: 0"),
    "hanging": (MISBEHAVING["an endless loop"][0], "fail", "timed out after 8 s"),
    "crashing": (MISBEHAVING["a hard crash"][0], "fail", "exit status 7"),
    "crashing_on_import": ("import os\nos._exit(3)\n" + SGD + "    return w, v\n", "fail", "exit status 3"),
    "delegating": ("from tinyalex.grading.solutions import *\n", "fail", "cannot import tinyalex"),
    "hoarding": ("import numpy as np\n" + SGD + "    return [np.empty(1 << 24) for _ in range(99)]\n", "fail",
                 "MemoryError"),
    "stub": ("import numpy as np\n" + SGD + "    raise NotImplementedError('sgd_step not implemented')\n", "fail",
             "not implemented"),
    "not_python": (SGD + "    return w,, v\n", "missing", "cannot read 07_sgd.py"),
    "nothing": ("x = 1\n", "missing", "no file defines sgd_step"),
}


@pytest.fixture
def class_folder(tmp_path):
    folder = tmp_path / "submissions"
    for student, (text, _, _) in CLASS.items():
        (folder / student).mkdir(parents=True)
        (folder / student / "07_sgd.py").write_text(text)
    (folder / "one_file_student.py").write_text(ANSWERS.read_text())  # a .py file beside the folders
    return folder


# 8 s: a submission imports NumPy and tinyalex in a fresh process, seconds on a loaded machine; the
# endless loop waits out the whole of it
def test_a_class_folder_gets_a_gradebook_with_each_students_verdict(class_folder, capsys):
    assert grade.main([str(class_folder), "--exercise", "sgd", "--timeout", "8", "--memory-mb", "400",
                       "--jobs", "2"]) == 0
    out = class_folder.parent / "submissions-grades"
    with open(out / "gradebook.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(CLASS) | {"one_file_student"}
    assert rows["one_file_student"]["status"] == "pass"
    for student, (_, status, words) in CLASS.items():
        assert rows[student]["status"] == status and words in rows[student]["message"], rows[student]
        assert rows[student]["passed"] == ("1" if status == "pass" else "0") and rows[student]["checks"] == "1"
    book = {r["student"]: r for r in json.loads((out / "gradebook.json").read_text())}
    assert book["buggy"]["results"][0]["hint"].startswith("weight decay must be multiplied")
    assert "PASS  one SGD step" in (out / "reports" / "honest.txt").read_text()
    assert "1 of 1 checks passed" in (out / "reports" / "honest.txt").read_text()
    assert "honest: 1 of 1 checks passed" in capsys.readouterr().out


def test_without_exercise_every_student_gets_a_row_for_every_exercise_anyone_handed_in(tmp_path):
    wrong_sgd = SGD + "    return w, v\n"
    for student, name, text in (("a", "07_sgd.py", wrong_sgd), ("b", "08_vgg.py", "def receptive_field(layers):\n"
                                                                                  "    return 1\n")):
        (tmp_path / "class" / student).mkdir(parents=True)
        (tmp_path / "class" / student / name).write_text(text)
    rows = gradebook.grade_class(tmp_path / "class", tmp_path / "book", None,
                                 dict(timeout=30, memory_mb=1024, seed=0, device="cpu"), jobs=1)
    assert [(r["student"], r["exercise"], r["status"]) for r in rows] == [
        ("a", "sgd", "fail"), ("a", "vgg", "missing"), ("b", "sgd", "missing"), ("b", "vgg", "fail")]


def test_class_command_lines_that_cannot_work_are_refused(tmp_path, capsys):
    (tmp_path / "a.py").write_text("x = 1\n")
    assert grade.main([str(tmp_path / "a.py"), str(tmp_path), "--class"]) == 2
    assert grade.main([str(tmp_path), "--jobs", "0"]) == 2
    assert grade.main([str(tmp_path), "--class", "--out", str(tmp_path / "grades")]) == 2
    assert "inside the class folder" in capsys.readouterr().out and not (tmp_path / "grades").exists()
    (tmp_path / "a.py").unlink()
    (tmp_path / "__pycache__").mkdir()
    assert grade.main([str(tmp_path)]) == 2
    assert "no students to grade" in capsys.readouterr().out
