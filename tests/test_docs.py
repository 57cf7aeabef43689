"""The documentation: the gallery examples run, and the API reference is complete.

The examples are run as scripts, each in its own subprocess, with the
non-interactive matplotlib backend and the small settings they use by default
(``SMOOTHCERT_EXAMPLES_FULL`` is removed from the environment). Each takes
seconds to tens of seconds, so together they are marked slow.

Building the HTML documentation itself needs the ``docs`` extra::

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import ast
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "examples"
API_RST = ROOT / "docs" / "api.rst"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))

#: Optional packages each example needs beyond the test extra's matplotlib and pandas.
EXTRA_REQUIREMENTS = {
    "plot_skorch_digits.py": ("torch", "skorch"),
    "plot_rotation_invariance.py": ("torch", "skorch"),
    "plot_digits_dimension.py": ("torch", "skorch"),
}
#: Seconds after which an example counts as hung.
EXAMPLE_TIMEOUT = 600


def _example_env():
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    env.pop("SMOOTHCERT_EXAMPLES_FULL", None)
    # Import the package of this checkout even when it is not installed.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    # pytest-xdist already runs one worker per core: one thread per worker
    # avoids oversubscription (OpenMP spin-waits make torch and
    # HistGradientBoosting orders of magnitude slower on a busy machine).
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def test_examples_exist():
    assert EXAMPLES, f"no examples found in {EXAMPLES_DIR}"
    assert (EXAMPLES_DIR / "README.rst").is_file(), (
        "the gallery needs examples/README.rst"
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_in_gallery_format(path):
    """A module docstring starting with an RST title, ``# %%`` cells, full settings."""
    source = path.read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source), clean=False)
    assert docstring, f"{path.name} has no module docstring"
    lines = [line.rstrip() for line in docstring.strip().splitlines()]
    assert len(lines) >= 3, f"{path.name}: the docstring must start with a title"
    over, title, under = lines[:3]
    assert set(over) == {"="} and set(under) == {"="}, (
        f"{path.name}: the docstring must start with an over- and underlined title"
    )
    assert len(over) >= len(title) and len(under) >= len(title), (
        f"{path.name}: the title's over/underline is shorter than the title"
    )
    assert "# %%" in source, f"{path.name} has no '# %%' cells"
    assert "SMOOTHCERT_EXAMPLES_FULL" in source, (
        f"{path.name} does not say how to run its full settings"
    )


def _example_params():
    """The examples; those that need torch and skorch carry the ``torch`` marker."""
    for path in EXAMPLES:
        needs = set(EXTRA_REQUIREMENTS.get(path.name, ()))
        marks = [pytest.mark.torch] if needs & {"torch", "skorch"} else []
        yield pytest.param(path, marks=marks, id=path.name)


@pytest.mark.slow
@pytest.mark.parametrize("path", list(_example_params()))
def test_example_runs(path, tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("pandas")
    for module in set(EXTRA_REQUIREMENTS.get(path.name, ())) - {"torch", "skorch"}:
        pytest.importorskip(module)
    result = subprocess.run(
        [sys.executable, str(path)],
        check=False,
        cwd=tmp_path,  # whatever an example writes stays out of the checkout
        env=_example_env(),
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT,
    )
    assert result.returncode == 0, (
        f"{path.name} failed with exit status {result.returncode}\n"
        f"--- stdout (tail) ---\n{result.stdout[-3000:]}\n"
        f"--- stderr (tail) ---\n{result.stderr[-6000:]}"
    )


def _public_functions(module):
    """Names in ``module.__all__`` and functions defined in it without a leading ``_``."""
    names = set(getattr(module, "__all__", ()))
    for name, obj in vars(module).items():
        if (
            not name.startswith("_")
            and inspect.isfunction(obj)
            and obj.__module__ == module.__name__
        ):
            names.add(name)
    return names


def _documented(name, text):
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None


def test_api_reference_lists_every_public_name():
    import smoothcert
    import smoothcert.demo
    import smoothcert.exceptions
    import smoothcert.guarantees
    import smoothcert.metrics
    import smoothcert.plotting

    text = API_RST.read_text(encoding="utf-8")
    names = set(smoothcert.__all__)
    names |= _public_functions(smoothcert.guarantees)
    names |= _public_functions(smoothcert.metrics)
    names |= _public_functions(smoothcert.exceptions)
    names |= _public_functions(smoothcert.demo)
    names |= _public_functions(smoothcert.plotting)
    missing = sorted(name for name in names if not _documented(name, text))
    assert not missing, f"docs/api.rst does not mention: {missing}"


#: User-guide pages whose ``>>>`` examples are run as doctests.
DOCTEST_PAGES = ("user_guide/tabular.rst",)


@pytest.mark.parametrize("page", DOCTEST_PAGES)
def test_user_guide_examples_run(page):
    """The ``>>>`` examples of these pages run and print what the page says."""
    import doctest

    pytest.importorskip("pandas")
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testfile(
        str(ROOT / "docs" / page), module_relative=False, optionflags=flags, verbose=False,
        report=True,
    )
    assert result.attempted > 0, f"{page} has no examples"
    assert result.failed == 0, f"{result.failed} example(s) of {page} failed (see the output)"
