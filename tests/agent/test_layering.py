"""Serving never loads the offline recipe: no module of ``agent`` imports ``recipe`` (data building,
evaluation, the draft index builder) or ``dlm_core.train`` (the trainer), at import time or later."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("recipe", "dlm_core.train")


def _forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def test_importing_every_agent_module_loads_no_recipe_or_trainer_code() -> None:
    code = """
import json, pkgutil, importlib, sys
import agent
names = [m.name for m in pkgutil.walk_packages(agent.__path__, "agent.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "loaded": sorted(sys.modules)}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out.splitlines()[-1])
    assert {"agent.reply", "agent.pipeline", "agent.embedded.drafts", "agent.prompt"} <= set(
        result["imported"]
    )
    assert [m for m in result["loaded"] if _forbidden(m)] == []


def test_no_agent_source_imports_recipe_or_trainer_code_even_lazily() -> None:
    """Imports inside functions (the teacher reply model, the draft index) run only when called: read
    every import statement of the source instead."""
    found = []
    for path in sorted((ROOT / "agent").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if _forbidden(n)]
    assert found == []
