"""Every examples/plot_*.py runs to completion as a plain script.

Each example runs in a subprocess (a fresh interpreter, as a user would run it) with
the non-interactive Agg backend and SKRANK_EXAMPLES_SMALL=1, which the examples read
to shrink their data and grids to a few seconds. An example that imports an optional
framework (torch, jax, directly or through skrank.torch / skrank.jax) is skipped when
that framework is not installed.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
# `import torch`, `from jax import ...`, `from skrank.torch import ...` at a line's start
OPTIONAL_IMPORT = re.compile(r"^\s*(?:import|from)\s+(?:skrank\.)?(torch|jax)\b", re.M)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, tmp_path):
    for module in sorted(set(OPTIONAL_IMPORT.findall(path.read_text(encoding="utf-8")))):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{path.name} needs {module}, which is not installed")
    env = dict(os.environ, MPLBACKEND="Agg", SKRANK_EXAMPLES_SMALL="1")
    # the in-place build is importable from any directory
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (
        f"{path.name} failed (return code {proc.returncode}):\n{proc.stderr}")


def test_examples_found():
    assert len(EXAMPLES) >= 5
