"""The package's shape: no import cycle, no module over about 400 lines, each responsibility in one module."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tinyalex"
MAX_LINES = 400


def _name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(module):
    """The tinyalex modules that ``module`` imports anywhere in its text (also inside functions)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + [base]).rstrip(".")
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names)
    return {m for m in found if m in MODULES and m != module}


def test_no_module_imports_itself_back_through_others():
    graph = {m: imports(m) for m in MODULES}
    state = {}  # module -> "open" while its imports are followed, "done" after

    def cycle_from(m, path):
        state[m] = "open"
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                return path + [d]
            if d not in state and (found := cycle_from(d, path + [d])):
                return found
        state[m] = "done"
        return None

    for m in MODULES:
        if m not in state and (cycle := cycle_from(m, [m])):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_the_core_imports_only_the_backend_and_itself():
    assert imports("tinyalex.tensor") == {"tinyalex.backend", "tinyalex.graph"}
    assert imports("tinyalex.graph") == {"tinyalex.backend"}


@pytest.mark.parametrize("module", ["tinyalex.functional.pooling", "tinyalex.functional.reference"])
def test_windowed_ops_take_their_geometry_from_im2col_not_from_the_convolution(module):
    assert "tinyalex.functional.im2col" in imports(module) and "tinyalex.functional.conv" not in imports(module)



def test_no_module_is_over_about_400_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these by idea (lines): {long}"


def test_host_numpy_is_imported_as_numpy_not_reached_through_the_backend():
    """One way to NumPy for host arrays (``import numpy as np``); ``backend.xp(x)`` for an array's own module."""
    through = [m for m, p in MODULES.items() if "backend.np." in p.read_text()]
    assert through == []
