"""The import direction holds: the core (``sharer.service`` and what it pulls in) loads no Celery,
no web framework and not the dashboard, and nothing in ``sharer/`` imports ``tasks/``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from conftest import ROOT

FORBIDDEN = ("celery", "kombu", "fastapi", "starlette", "uvicorn", "sharer.web", "tasks")


def _loaded_after(module: str) -> list[str]:
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    return json.loads(out.stdout)


def _forbidden(names: list[str]) -> list[str]:
    return [n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]


def test_importing_the_core_service_loads_no_celery_fastapi_or_web():
    assert _forbidden(_loaded_after("sharer.service")) == []


def test_platforms_delivery_and_the_sandbox_stay_framework_free():
    for module in ("sharer.delivery", "sharer.platforms.telegram", "sharer.sandbox.run", "sharer.config"):
        assert _forbidden(_loaded_after(module)) == [], module


def test_nothing_in_sharer_imports_tasks():
    offenders = []
    for path in (ROOT / "sharer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n == "tasks" or n.startswith("tasks.")]
    assert offenders == []
