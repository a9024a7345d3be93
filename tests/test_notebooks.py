"""Every lesson opens as a Jupyter notebook, runs there with --quick, and shows each figure it saves inline.

Each lesson is converted with jupytext, as a student opens it, and executed cell by cell in a real
IPython kernel (nbclient), in the lessons folder; the options come from ``$TINYALEX_LESSON_ARGS``,
a notebook having no command line. Every PNG the lesson saves through ``Lesson.save`` must be among
the cells' image/png outputs, byte for byte.
"""
import base64

import pytest

from test_lessons import LESSONS, SCRIPTS, TIMEOUT_S

jupytext = pytest.importorskip("jupytext", reason="pip install -e '.[notebook]'")
nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[notebook]'")
pytest.importorskip("ipykernel", reason="pip install -e '.[notebook]'")


def inline_pngs(notebook):
    """The image/png outputs of every cell of an executed ``notebook``, as PNG bytes."""
    return [base64.b64decode(output["data"]["image/png"]) for cell in notebook.cells
            for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]


def stream_text(notebook):
    return "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
                   if output["output_type"] == "stream")


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_lesson_runs_as_a_notebook_and_shows_its_figures_inline(script, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYALEX_LESSON_ARGS", f"--quick --out '{tmp_path}'")  # the kernel inherits it
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    notebook = jupytext.read(script)
    nbclient.NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(LESSONS)}}).execute()
    assert "quick mode" in stream_text(notebook), f"{script.name} did not take --quick from the environment"
    saved = sorted(tmp_path.glob(f"{script.name[:2]}_*.png"))  # Lesson.save's; training curves go to subfolders
    assert saved, f"{script.name} saved no figure in {tmp_path}"
    shown = inline_pngs(notebook)
    missing = [f.name for f in saved if f.read_bytes() not in shown]
    assert not missing, f"{script.name}: saved but not shown inline: {missing} ({len(shown)} inline images)"
