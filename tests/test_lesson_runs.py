"""A lesson's run stopped and started again with the same command continues from its checkpoint
(``Lesson.train``); a run with other settings is trained afresh, never taken for it."""
import sys

import numpy as np
import pytest

from test_lessons import LESSONS

sys.path.insert(0, str(LESSONS))
import common  # noqa: E402  (lessons/common.py, as a lesson imports it)
import tinyalex as ta  # noqa: E402
from tinyalex import checkpoint, nn  # noqa: E402
from tinyalex.data.memory import Arrays  # noqa: E402


@pytest.fixture
def lesson(tmp_path, capsys):
    made = common.Lesson("99", "runs", "section 0", runs={"default": ("nothing", "0 s")},
                         argv=["--quick", "--out", str(tmp_path)])
    capsys.readouterr()  # the banner
    return made


def train(lesson, capsys, **options):
    rng = np.random.default_rng(0)
    images = Arrays(rng.integers(0, 256, (16, 4, 4, 3), dtype=np.uint8), np.arange(16) % 2, ["a", "b"])
    ta.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 2))
    lesson.train(model, images, images, 1, 0.01, "net", batch_size=8, **options)
    return capsys.readouterr().out


def test_a_run_from_before_the_mean_option_is_continued_and_a_mean_colour_run_is_not_taken_for_it(lesson, capsys):
    assert "continuing" not in train(lesson, capsys)
    key = checkpoint.load(lesson.out / "99_net" / "last.npz").extra["lesson_run"]
    assert "mean" not in key  # the key such runs were saved with: every one subtracted the mean image
    assert "(continuing " in train(lesson, capsys)
    assert "continuing" not in train(lesson, capsys, mean="colour")
    assert "(continuing " in train(lesson, capsys, mean="colour")
