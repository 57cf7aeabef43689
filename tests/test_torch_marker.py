"""Without torch, the torch-marked tests are skipped one by one and nothing else is lost.

The suite is collected in a subprocess where ``import torch`` fails (a
``torch`` package that raises ``ModuleNotFoundError`` first on the path), and
the torch-marked tests are run there. Every test module must still be
collected (no module-level ``importorskip`` hiding its torch-free tests), none
may fail to import, and every torch-marked test must be skipped for that reason
before any of its fixtures runs.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_HIDE_TORCH = 'raise ModuleNotFoundError("No module named \'torch\' (hidden)", name="torch")\n'

_RECORDER = '''
import json, os
import pytest

_RECORD = {"collected": [], "torch": [], "outcomes": {}}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    _RECORD["collected"] = [item.nodeid for item in items]
    _RECORD["torch"] = [item.nodeid for item in items if item.get_closest_marker("torch")]


def pytest_runtest_logreport(report):
    if report.when == "setup" or report.outcome != "passed":
        reason = str(report.longrepr[-1]) if report.skipped else ""
        _RECORD["outcomes"].setdefault(report.nodeid, (report.when, report.outcome, reason))


def pytest_sessionfinish(session, exitstatus):
    _RECORD["exitstatus"] = int(exitstatus)
    with open(os.environ["TORCH_MARKER_RECORD"], "w") as f:
        json.dump(_RECORD, f)
'''


def test_without_torch_only_torch_tests_are_skipped(tmp_path):
    shim = tmp_path / "shim"
    (shim / "torch").mkdir(parents=True)
    (shim / "torch" / "__init__.py").write_text(_HIDE_TORCH)
    (shim / "torch_marker_recorder.py").write_text(_RECORDER)
    record = tmp_path / "record.json"
    env = dict(os.environ, TORCH_MARKER_RECORD=str(record))
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(shim), str(ROOT), env.get("PYTHONPATH")) if p)
    # the package's doctests too: every module of the package imports without torch
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "torch", "-q", "-p", "no:cacheprovider",
         "-p", "torch_marker_recorder", "-p", "no:xdist", "-p", "no:randomly"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    output = result.stdout[-4000:] + result.stderr[-4000:]
    assert result.returncode == 0, output
    assert "error" not in result.stdout.splitlines()[-1].lower(), output
    data = json.loads(record.read_text())
    collected, marked = data["collected"], set(data["torch"])
    # every test module is collected, with torch-free tests in each module that has any
    modules = {nodeid.split("::")[0] for nodeid in collected}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        assert f"tests/{path.name}" in modules, f"{path.name} collected nothing without torch"
    assert len(collected) - len(marked) > 1000
    for module in ("test_persistence.py", "test_numerics.py", "test_shortcuts.py",
                   "test_attacks.py", "test_region.py"):
        ids = [n for n in collected if n.startswith(f"tests/{module}::")]
        assert any(n not in marked for n in ids), f"no torch-free test in {module}"
        assert any(n in marked for n in ids), f"no torch test in {module}"
    # the torch tests: each skipped at setup, for missing torch, none passed or failed
    assert marked
    outcomes = data["outcomes"]
    for nodeid in marked:
        when, outcome, reason = outcomes[nodeid]
        assert (when, outcome) == ("setup", "skipped"), (nodeid, when, outcome)
        assert "cannot be imported" in reason and "torch" in reason, (nodeid, reason)
