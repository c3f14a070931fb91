"""Dependencies run one way: plugins -> evals -> prep. prep imports neither plugins nor evals; evals does not
import plugins (issue 15: `prep fit` once imported the preflight plugin, which closed a loop)."""

from __future__ import annotations

import ast

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
