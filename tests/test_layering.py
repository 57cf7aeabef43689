"""The package's layers import only downwards (see the design page, *Layers*).

Every intra-package import of every module is read from its source (module
level and inside functions alike) and checked against the rank of its layer.
"""

import ast
from pathlib import Path

import pytest

import smoothcert

PACKAGE = Path(smoothcert.__file__).parent

#: Rank of each layer: a module may import modules of strictly lower rank, or of
#: its own layer.
RANKS = {
    "exceptions": 0,
    "_geometry": 0,
    "_engine": 1,
    "_certify": 2,
    "_search": 2,
    "metrics": 3,
    "search": 3,
    "_estimators": 4,
    "plotting": 5,
    "guarantees": 5,
    "demo": 6,
    "cli": 7,
    "__init__": 8,
}


def _layer(parts):
    """Layer of a module given as package-relative parts (``("_engine", "_loop")``)."""
    return parts[0] if parts else "__init__"


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        yield path, parts


def _imports(path, parts):
    """Package-relative parts of every smoothcert module imported by ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = list(parts[:-1]) if parts[-1] != "__init__" else list(parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "smoothcert":
                target = node.module.split(".")[1:]
            else:
                continue
            if node.module is None or not target:
                # "from . import x" / "from .. import x": the names are modules or the root
                for alias in node.names:
                    yield tuple(target + [alias.name]) if target else (alias.name,)
            else:
                yield tuple(target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names = alias.name.split(".")
                if names[0] == "smoothcert":
                    yield tuple(names[1:])


def test_every_module_belongs_to_a_layer():
    unknown = sorted({_layer(parts[:1] if parts[0] != "__init__" else ()) for _, parts in _modules()}
                     - set(RANKS))
    assert not unknown, f"modules outside the known layers: {unknown}"


@pytest.mark.parametrize("path, parts", list(_modules()), ids=lambda v: "/".join(v) if isinstance(v, tuple) else "")
def test_imports_point_down(path, parts):
    own = _layer(parts if parts[0] != "__init__" else ())
    bad = []
    for target in _imports(path, parts):
        layer = _layer(target)
        if layer not in RANKS:  # a name of the root package, e.g. __version__
            layer = "__init__"
        if layer != own and RANKS[layer] >= RANKS[own]:
            bad.append(".".join(target))
    assert not bad, f"{'/'.join(parts)} ({own}) imports upwards or sideways: {bad}"


def test_the_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "mod.py"
    bad.write_text("from .._estimators._base import BaseSmoothing\n")
    targets = list(_imports(bad, ("_engine", "mod")))
    assert targets == [("_estimators", "_base")]
    assert RANKS[_layer(targets[0])] > RANKS["_engine"]
