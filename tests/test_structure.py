"""The shape of the code: every module says its job in its first line, and the import contracts hold."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("embeddings", "rag", "ui", "scripts")


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_opens_with_a_one_line_summary_of_its_job(path):
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc, f"{path.relative_to(ROOT)} has no module docstring; open it with one line that says its job"
    first = doc.splitlines()[0]
    assert first.strip() and first.rstrip().endswith((".", ":", "?")), (
        f"{path.relative_to(ROOT)}: the first line of its docstring should be a sentence: {first!r}"
    )


def test_each_subpackage_is_listed_for_installation():
    """A sub-package missing from pyproject's list would import in the checkout but not when installed."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for package in ("embeddings", "rag", "ui")
        for init in (ROOT / package).rglob("__init__.py")
    }
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"


def test_the_import_contracts_hold():
    """ui -> rag -> embeddings, the stores independent of each other, no circles ([tool.importlinter])."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is in the dev extra: bash scripts/setup.sh dev")
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
