import json
import os
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from rems.program.certifications import certification_create
from rems.program.models import Program
from rems.program.programs import BUNDLED, program_load

from .factories import PharmacyFactory, PrescriberFactory, UserFactory, token_for

# The conformance checks read data written by others, kept outside the project: `.ci/run` runs them, with
# REMS_FIXTURES pointing at that data, as a step of their own after the test suite.
collect_ignore = [] if os.environ.get("REMS_FIXTURES") else ["conformance"]

POMALIDOMIDE_4MG = "59572-0504-21"
POMALIDOMIDE_3MG = "59572-0503-21"


@pytest.fixture
def program(db):
    program_load(actor=None, data=json.loads((BUNDLED / "pomalidomide.json").read_text()), now=timezone.now())
    return Program.objects.get(slug="pomalidomide")


class Api:
    """A JSON client: `api.post(path, body, as_=token)` returns (status, body)."""

    def __init__(self):
        self.client = Client()

    def _call(self, method, path, body=None, *, as_=None, headers=None, raw=None):
        kwargs = {"content_type": "application/json"}
        if as_:
            kwargs["HTTP_AUTHORIZATION"] = f"Token {as_}"
        for name, value in (headers or {}).items():
            kwargs["HTTP_" + name.upper().replace("-", "_")] = value
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = getattr(self.client, method)(path, data=data, **kwargs)
        try:
            payload = response.json()
        except ValueError:
            payload = response.content
        self.last = response
        return response.status_code, payload

    def get(self, path, **kwargs):
        return self._call("get", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self._call("post", path, body, **kwargs)


@pytest.fixture
def same_minute():
    """The request limits count per clock minute: start a test that needs its requests in one window at least
    ten seconds before the minute ends."""
    import time

    now = timezone.now()
    if now.second >= 50:
        time.sleep(60 - now.second - now.microsecond / 1e6 + 0.05)


@pytest.fixture
def api():
    return Api()


@dataclass
class Party:
    prescriber: object
    pharmacy: object
    tokens: dict
    users: dict


def make_party(program, now, *, certify=True):
    prescriber = PrescriberFactory()
    pharmacy = PharmacyFactory()
    if certify:
        certification_create(actor=None, program=program, prescriber=prescriber, now=now)
        certification_create(actor=None, program=program, pharmacy=pharmacy, now=now)
    users = {
        "prescriber": UserFactory(role=Role.PRESCRIBER, prescriber=prescriber),
        "delegate": UserFactory(role=Role.DELEGATE, prescriber=prescriber),
        "pharmacist": UserFactory(role=Role.PHARMACIST, pharmacy=pharmacy),
        "pharmacy_manager": UserFactory(role=Role.PHARMACY_MANAGER, pharmacy=pharmacy),
    }
    return Party(prescriber, pharmacy, {k: token_for(u, now) for k, u in users.items()}, users)


@pytest.fixture
def world(program):
    """Two certified prescriber offices and pharmacies (ours and theirs), an administrator and an auditor."""
    now = timezone.now() - timedelta(days=60)  # certified long enough ago for any back-dated record
    ours, theirs = make_party(program, now), make_party(program, now)
    admin = UserFactory(role=Role.ADMIN)
    auditor = UserFactory(role=Role.AUDITOR)
    return {
        "ours": ours,
        "theirs": theirs,
        "admin": token_for(admin, now),
        "auditor": token_for(auditor, now),
        "admin_user": admin,
        "auditor_user": auditor,
    }


@pytest.fixture(autouse=True)
def checkpoint_store(settings, tmp_path):
    """Each test's compliance log starts empty, so each test keeps its log's checkpoints in a folder of its own."""
    settings.LOG_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    return tmp_path / "checkpoints"


@pytest.fixture(autouse=True)
def no_patient_data_in_logs(request, caplog):
    """No log line written during a test names a patient or gives a birth date: logs carry ids only."""
    import logging

    caplog.set_level(logging.INFO)
    yield
    if not {"db", "transactional_db", "world", "program"} & set(request.fixturenames):
        return
    from rems.program.models import Patient

    secrets_ = set()
    for first, last, born in Patient.objects.values_list("first_name", "last_name", "date_of_birth"):
        secrets_.update({f"{first} {last}", last, born.isoformat()})
    records = caplog.get_records("setup") + caplog.get_records("call")
    lines = [record.getMessage() + (record.exc_text or "") for record in records]
    leaks = [(line, secret) for line in lines for secret in secrets_ if len(secret) > 3 and secret in line]
    assert not leaks, f"patient data in the log: {leaks[:3]}"
