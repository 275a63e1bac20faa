"""The documentation: it builds without a warning, its examples run, its API reference
is complete.

The full Sphinx build (``test_doc_build``) runs only when ``SKRANK_DOC_BUILD=1`` is set
(CI runs it in a step of its own) and the ``[doc]`` extra is installed. The code examples
of the pages and the completeness of ``doc/api.rst`` are checked in every run: they need
nothing beyond skrank's own dependencies (pages whose examples use PyTorch or JAX are
skipped when the framework is absent).
"""

import ast
import doctest
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "doc"
PAGES = sorted(p for p in DOC.rglob("*.rst")
               if not {"_build", "generated", "auto_examples", "_gallery_src"}
               & set(p.relative_to(DOC).parts))
# `import torch`, `from jax import ...`, `from skrank.torch import ...` in an example
OPTIONAL_IMPORT = re.compile(r">>> (?:import|from)\s+(?:skrank\.)?(torch|jax)\b")


@pytest.mark.skipif(os.environ.get("SKRANK_DOC_BUILD") != "1",
                    reason="the documentation build runs with SKRANK_DOC_BUILD=1")
def test_doc_build(tmp_path):
    for module in ("sphinx", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme",
                   "matplotlib"):
        pytest.importorskip(module)
    env = dict(os.environ, MPLBACKEND="Agg")
    # the in-place build is importable from the documentation's configuration
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOC), str(tmp_path / "html")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"sphinx-build failed (return code {proc.returncode}):\n"
        f"{proc.stdout[-20000:]}\n{proc.stderr[-20000:]}")
    assert (tmp_path / "html" / "index.html").is_file()


def test_pages_found():
    names = {p.relative_to(DOC).as_posix() for p in PAGES}
    assert {"index.rst", "install.rst", "quickstart.rst", "api.rst",
            "user_guide/strength.rst"} <= names


@pytest.mark.parametrize("page", [p for p in PAGES if ">>>" in p.read_text("utf-8")],
                         ids=lambda p: p.relative_to(DOC).as_posix())
def test_page_examples(page):
    text = page.read_text(encoding="utf-8")
    for module in sorted(set(OPTIONAL_IMPORT.findall(text))):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{page.name} has examples that need {module}")
    result = doctest.testfile(
        str(page), module_relative=False, verbose=False, report=True,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} example(s) of {page.name} failed"


def _public_names(path):
    """The names in the ``__all__`` of a module's source (no import needed, so the
    adapters are checked without their frameworks)."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError(f"{path} has no __all__")


@pytest.mark.parametrize("module", ["skrank", "skrank.losses", "skrank.metrics",
                                    "skrank.preprocessing", "skrank.linear_model",
                                    "skrank.torch", "skrank.jax"])
def test_api_reference_complete(module):
    """Every public name has its entry in doc/api.rst (and so a generated page)."""
    source = ROOT / (module.replace(".", "/") + ".py")
    if module == "skrank":
        source = ROOT / "skrank" / "__init__.py"
    names = {n for n in _public_names(source)
             if not n.startswith("__")
             and not (ROOT / "skrank" / f"{n}.py").is_file()}  # submodules
    text = (DOC / "api.rst").read_text(encoding="utf-8")
    # the section of the module: from its ".. module::" line to the next one
    sections = re.split(r"^\.\. module:: ", text, flags=re.M)
    section = next((s for s in sections if s.split("\n", 1)[0].strip() == module), None)
    assert section is not None, f"doc/api.rst has no section for {module}"
    listed = set(re.findall(r"^   (\w+)$", section, flags=re.M))
    assert names <= listed, f"missing from doc/api.rst: {sorted(names - listed)}"
    assert listed <= names, f"not public in {module}: {sorted(listed - names)}"


def test_design_sections_cited_in_the_code_exist():
    """Every "section N" a comment or docstring of the library cites is a numbered section
    of doc/design.rst, the repository's design notes."""
    design = (DOC / "design.rst").read_text(encoding="utf-8")
    sections = {int(n) for n in re.findall(r"^(\d+)\. \S.*\n=+$", design, flags=re.M)}
    assert len(sections) >= 10
    cited = {}
    for path in sorted((ROOT / "skrank").glob("*.py*")):
        for n in re.findall(r"\bsections? (\d+)", path.read_text(encoding="utf-8")):
            cited.setdefault(int(n), []).append(path.name)
    assert cited, "no citations found: the pattern is wrong"
    missing = {n: files for n, files in cited.items() if n not in sections}
    assert not missing, f"sections cited but not in doc/design.rst: {missing}"
