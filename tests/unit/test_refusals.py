"""Refusals know nothing of HTTP; one table gives each its status, for the API and the portal alike."""

import importlib
import pkgutil

import pytest

import accounts
import dispensing
import rems.program
from rems.core.errors import ActionRefused
from rems.interfaces.refusals import REFUSAL_STATUS, refusal_status


def _domain_refusals():
    for package in (accounts, dispensing, rems.program):
        for module in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            if not module.name.endswith(".migrations"):
                importlib.import_module(module.name)
    found, todo = set(), [ActionRefused]
    while todo:
        for cls in todo.pop().__subclasses__():
            found.add(cls)
            todo.append(cls)
    return found


def test_no_refusal_carries_an_http_status():
    refusals = _domain_refusals()
    assert len(refusals) >= 15
    assert [cls.__name__ for cls in refusals if "status" in vars(cls)] == []


def test_every_refusal_has_a_status_from_the_table():
    for cls in _domain_refusals():
        assert refusal_status(cls("x")) in (400, 403, 409, 422), cls


@pytest.mark.parametrize("module, name, status", [
    ("rems.program.validation", "InvalidValue", 400),
    ("rems.program.patients", "CannotEnroll", 422),
    ("rems.program.patients", "AlreadyEnrolled", 409),
    ("rems.program.records", "CannotRecord", 422),
    ("rems.program.certifications", "CannotCertify", 409),
    ("rems.program.certifications", "CertificationPeriodUnknown", 422),
    ("dispensing.dispenses", "CannotDispense", 409),
    ("dispensing.dispenses", "DispenseNotAllowed", 422),
    ("accounts.services", "UsernameTaken", 409),
    ("accounts.services", "CannotDeactivateSelf", 403),
])
def test_the_most_specific_class_decides(module, name, status):
    assert refusal_status(getattr(importlib.import_module(module), name)("x")) == status


def test_the_table_names_refusals_only():
    assert all(issubclass(cls, ActionRefused) for cls in REFUSAL_STATUS)
