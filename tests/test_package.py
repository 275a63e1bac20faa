"""Packaging: compiled extension, version, show_versions, no optional imports."""
import importlib.machinery
import subprocess
import sys

import numpy as np
import pytest

import skrank


def test_pav_is_compiled_extension():
    from skrank import _pav

    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    assert _pav.__file__.endswith(suffixes), _pav.__file__
    assert not _pav.__file__.endswith((".py", ".pyx", ".pyc"))


def test_version():
    assert isinstance(skrank.__version__, str)
    assert skrank.__version__
    assert skrank.__version__[0].isdigit()


def test_show_versions(capsys):
    result = skrank.show_versions()
    out = capsys.readouterr().out
    assert result is None or isinstance(result, (str, dict))
    assert skrank.__version__ in out
    assert "numpy" in out.lower() and np.__version__ in out
    assert "scipy" in out.lower()
    assert sys.version.split()[0] in out
    # optional dependencies appear when installed, never imported
    from importlib.metadata import PackageNotFoundError, version

    for name in ("torch", "dask", "cupy-cuda12x"):
        try:
            assert f"{name}: {version(name)}" in out
        except PackageNotFoundError:
            assert f"{name}:" not in out


def test_public_names():
    for name in ("soft_rank", "soft_sort", "isotonic_regression", "vjp", "jvp", "show_versions",
                 "__version__"):
        assert hasattr(skrank, name), name
    for name in ("soft_rank", "soft_sort", "isotonic_regression", "vjp", "jvp"):
        assert callable(getattr(skrank, name))
    for name in skrank.__all__:  # every advertised name resolves, lazy modules included
        assert getattr(skrank, name) is not None, name
    assert skrank.preprocessing.SoftRankTransformer.__module__ == "skrank.preprocessing"
    assert skrank.linear_model.SoftTrimmedRegressor.__module__ == "skrank.linear_model"
    assert {"preprocessing", "linear_model", "metrics", "losses"} <= set(dir(skrank))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        skrank.nope


def test_import_has_no_optional_dependencies():
    code = ("import skrank, sys; "
            "print(any(m in sys.modules for m in ('torch','jax','cupy','dask','pandas')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False", res.stdout


@pytest.mark.parametrize("name", ["soft_rank", "soft_sort"])
def test_keyword_only_options(name):
    fun = getattr(skrank, name)
    with pytest.raises(TypeError):
        fun(np.array([1.0, 2.0]), 1.0)  # regularization_strength is keyword-only


def test_demo_help_and_operators_only():
    run = [sys.executable, "-m", "skrank"]
    res = subprocess.run(run + ["--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: python -m skrank")
    assert "soft_rank" not in res.stdout  # usage only: the demo did not run
    res = subprocess.run(run + ["--operators-only"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "soft_rank" in res.stdout and "weight exactly 0" in res.stdout
    assert "diabetes" not in res.stdout
    res = subprocess.run(run + ["--nope"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "unrecognized arguments" in res.stderr
