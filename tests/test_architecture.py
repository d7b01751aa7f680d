"""The layering the code promises: no import cycles (lazy imports inside functions count too),
models/ never imports Qt, player/ never imports torch, and no module grows past its size."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "player")
MAX_LINES = 800
"""Lines a module may have at most; the issue's aim is about 500, and the few larger ones
(the composer, the reader) are noted to be split."""


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every project module ``path`` imports, at its top or inside a function."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _third_party(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def _package_parents(name: str) -> set[str]:
    """A module's packages: importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``,
    which is not a cycle of the module's making."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_module_imports_another_that_imports_it_back() -> None:
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(path, name, known) - _package_parents(name)
             for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_models_never_import_qt_and_the_player_never_imports_torch() -> None:
    for name, path in _modules().items():
        used = _third_party(path)
        if name.startswith("models"):
            assert not used & {"PySide6", "shiboken6", "player"}, name
        else:
            assert not used & {"torch", "transformers"}, name


def test_modules_stay_small() -> None:
    large = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert {name: n for name, n in large.items() if n > MAX_LINES} == {}


def test_test_files_share_helpers_through_the_support_modules() -> None:
    """Tests import helpers from tests/support.py and tests/media.py, never from another test
    file (whose fixtures and module-level set-up would come along)."""
    offenders = []
    for path in (ROOT / "tests").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    ("tests.test_", "tests.conftest")):
                offenders.append(f"{path.name}: {node.module}")
    assert offenders == []


def test_the_type_checker_passes_on_models() -> None:
    """make lint's mypy run, here too, so the types cannot drift between lint runs."""
    out = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]
