"""Write the exercise files from the exercise modules: the task text and signatures, never a solution.

The committed files in lessons/exercises/ are this module's output; a test keeps them in sync.
"""
import pathlib
import textwrap

from . import exercises
from ..io import atomic_write


def stub_source(exercise):
    """The text of one exercise file: the task, then each function raising NotImplementedError."""
    parts = ['"""' + exercise.text + f'\nGrade it:  tinyalex grade {exercise.file_name}\n"""\nimport numpy as np\n']
    for stub in exercise.stubs:
        doc = textwrap.indent(stub.doc, "    ").rstrip()
        parts.append(f'\ndef {stub.name}{stub.signature}:\n    """{doc.lstrip()}\n    """\n'
                     f'    raise NotImplementedError("{stub.name} not implemented")\n')
    return "\n".join(parts)


def write_stubs(directory):
    """Write every exercise file into ``directory`` (atomically, file by file); returns the paths."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for exercise in exercises.all_exercises():
        path = directory / exercise.file_name
        with atomic_write(path, "w") as f:
            f.write(stub_source(exercise))
        paths.append(path)
    return paths
