"""No number or category of any program in the service's code: the rule-set files hold them. Every string the
code of the service writes (docstrings and comments aside) and every template is searched for the programs'
category and method names, and for a number of days, weeks, hours, months or mIU/mL written out."""

import ast
import json
import re
from pathlib import Path

import pytest

from rems.program.programs import BUNDLED

ROOT = Path(__file__).resolve().parents[2]
SERVICE = ("rems", "dispensing", "accounts")
NUMBER_WITH_UNIT = re.compile(r"\b\d+\s*(?:-|‑)?\s*(?:days?|weeks?|hours?|months?|mIU)\b", re.IGNORECASE)


def program_names():
    names = set()
    for path in BUNDLED.glob("*.json"):
        for rule_set in json.loads(path.read_text())["rule_sets"]:
            parameters = rule_set["parameters"]
            names |= set(parameters["risk_categories"])
            names |= set(parameters["contraception_primary_methods"]) | set(parameters["contraception_secondary_methods"])
    return names


def code_strings(source):
    """The string constants of a module that are not docstrings."""
    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def service_files(*suffixes):
    for package in SERVICE:
        for path in sorted((ROOT / package).rglob("*")):
            if path.suffix in suffixes and "migrations" not in path.parts and "data" not in path.parts:
                yield path


def findings(text_items, names):
    found = []
    for where, text in text_items:
        found += [(where, match.group()) for match in NUMBER_WITH_UNIT.finditer(text)]
        found += [(where, name) for name in names if re.search(rf"\b{name}\b", text)]
    return found


def test_no_program_number_or_category_in_the_service_code():
    names = program_names()
    found = []
    for path in service_files(".py"):
        items = [(f"{path.relative_to(ROOT)}:{line}", text) for line, text in code_strings(path.read_text())]
        found += findings(items, names)
    for path in service_files(".html", ".txt"):
        found += findings([(str(path.relative_to(ROOT)), path.read_text())], names)
    assert found == []


@pytest.mark.parametrize("source", [
    'message = "A test within 7 days."',
    'message = f"Every {n} days, or 28 days at most."',
    'LABEL = "FRP_ADULT"',
    'methods = ["IUD"]',
    'text = "sensitive to 25 mIU/mL"',
])
def test_the_search_finds_what_it_looks_for(source):
    items = [(1, text) for _, text in code_strings(source)]
    assert findings(items, program_names())


@pytest.mark.parametrize("source", [
    'def f():\n    """Within 7 days: a docstring explains."""\n',
    'message = f"Every {plural(days, \'day\')}."',
    'FRP_ADULTS_SEEN = 3',
])
def test_the_search_lets_explanations_and_parameters_pass(source):
    items = [(1, text) for _, text in code_strings(source)]
    assert not findings(items, program_names())
