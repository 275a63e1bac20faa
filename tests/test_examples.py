"""Every examples/plot_*.py runs to completion as a plain script.

Each example runs in a subprocess (a fresh interpreter, as a user would run it) with
the non-interactive Agg backend and SKRANK_EXAMPLES_SMALL=1, which the examples read
to shrink their data and grids to a few seconds.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", SKRANK_EXAMPLES_SMALL="1")
    # the in-place build is importable from any directory
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (
        f"{path.name} failed (return code {proc.returncode}):\n{proc.stderr}")


def test_examples_found():
    assert len(EXAMPLES) >= 5
