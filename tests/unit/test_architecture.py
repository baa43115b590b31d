"""What is shared is public: no module imports another module's `_private` names, or reaches into them.

(The layers themselves are Import Linter's contracts, in pyproject.toml, checked by `make test`.)
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rems", "dispensing", "accounts", "tests", "scripts")
# Django documents a model's `_meta` as its public API for introspection.
PUBLIC_BY_CONVENTION = {"_meta"}


def _private(name):
    return name.startswith("_") and not name.startswith("__") and name not in PUBLIC_BY_CONVENTION


def _ours(module, level):
    return level > 0 or (module or "").split(".")[0] in PACKAGES


def _is_module(dotted):
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _sources():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def private_uses(source, package=""):
    """(line, what) of every `_private` name taken from another module of ours: imported by name, or read off an
    imported module of ours. `package` is the dotted package of the file, for its relative imports."""
    tree = ast.parse(source)
    modules = set()  # names bound to modules of ours in this file
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _ours(node.module, node.level):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            parent = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                if _private(alias.name):
                    found.append((node.lineno, f"from {'.' * node.level}{node.module or ''} import {alias.name}"))
                if _is_module(f"{parent}.{alias.name}"):
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _ours(alias.name, 0):
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append((node.lineno, f"import {alias.name}"))
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name) \
                and node.value.id in modules:
            found.append((node.lineno, f"{node.value.id}.{node.attr}"))
    return found


def _package(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1])


def test_no_module_uses_another_modules_private_names():
    offences = [f"{path.relative_to(ROOT)}:{line}: {what}"
                for path in _sources() for line, what in private_uses(path.read_text(), _package(path))]
    assert not offences, "private names used across modules:\n" + "\n".join(offences)


@pytest.mark.parametrize("source, caught", [
    ("from rems.core.gates import _decide", "from rems.core.gates import _decide"),
    ("from .facts import _latest_attestation", "from .facts import _latest_attestation"),
    ("from rems.core import gates\ngates._check_survey(1, 2, 3, 4)", "gates._check_survey"),
    ("from . import facts\nfacts._latest_attestation(1, 2)", "facts._latest_attestation"),
    ("import rems.core.gates as g\ng._decide([], '')", "g._decide"),
])
def test_the_check_catches_each_way_of_reaching_in(source, caught):
    assert [what for _, what in private_uses(source, "dispensing")] == [caught]


@pytest.mark.parametrize("source", [
    "from rems.core.gates import qualifying_negatives",
    "from rems.compliance_log.models import ComplianceLogEntry\nComplianceLogEntry._meta.db_table",
    "import json\njson._default_decoder",  # not ours
    "class A:\n    def f(self):\n        return self._x",
    "from django.db import connection\nconnection._cursor()",  # not ours: Django's own business
    "from rems.config.celery import app\napp._pool = None",  # an object of ours, but Celery's attribute
])
def test_what_it_lets_pass(source):
    assert private_uses(source, "dispensing") == []


def test_importing_the_pure_core_loads_no_django_and_no_broker():
    # Import Linter sees the core's own imports; this sees what importing it loads, package inits included.
    code = ("import sys, rems.core.gates, rems.core.outlook, rems.core.identifiers; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'celery', 'kombu', 'psycopg', "
            "'rest_framework', 'dispensing', 'accounts'}))")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"
