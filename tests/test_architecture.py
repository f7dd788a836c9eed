"""The layers hold: what may import what (docs/architecture.md), checked on the source and live."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Top-level names each layer may not import (the arrows of DESIGN: aware_ray -> policies,
# cluster -> envs; envs is the world and touches no framework).
FORBIDDEN = {
    "envs": {"aware_ray", "policies", "cluster", "ray", "torch", "redis", "kubernetes"},
    "policies": {"aware_ray", "cluster"},
    "cluster": {"aware_ray", "policies"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        hit = _imports(path) & FORBIDDEN[layer]
        if hit:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(hit)}")
    assert not bad, "\n".join(bad)


def _loaded_after(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "module", ["aware_ray.training.rank", "aware_ray.training.reselect", "aware_ray.training.validation"]
)
def test_scoring_a_policy_needs_no_tune(module: str) -> None:
    loaded = _loaded_after(module)
    assert not {m for m in loaded if m == "ray.tune" or m.startswith("ray.tune.")}


def test_the_forbidden_check_can_fail(tmp_path: Path) -> None:
    """The AST scan sees both import forms (so the layer test above is not vacuous)."""
    f = tmp_path / "m.py"
    f.write_text("import ray.tune\nfrom aware_ray.cli import main\nfrom . import x\n")
    assert _imports(f) == {"ray", "aware_ray"}
