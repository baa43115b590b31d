"""A lookup in scope (`scoping.get_in_scope`) is compiled once per shape and run as a prepared statement: for every
scope and role it finds exactly what the ORM finds, with the same related rows, and refuses what the ORM would not
find."""

from unittest import mock

import pytest
from django.db.models.sql.compiler import SQLCompiler
from django.http import Http404

from dispensing.models import Prescription
from rems.interfaces import scoping
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def _fields(obj):
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}


def _orm(queryset, **lookup):
    return queryset.filter(**lookup).order_by("pk").first() if not queryset.ordered else queryset.filter(**lookup).first()


@pytest.fixture
def records(world, program):
    from dispensing import prescriptions
    from tests.conftest import POMALIDOMIDE_4MG

    ours, theirs = world["ours"], world["theirs"]
    patients = [PatientFactory(prescriber=party.prescriber, program=program, risk_category="FNRP_ADULT")
                for party in (ours, theirs)]
    from django.utils import timezone

    issued = [prescriptions.prescription_authorize(actor=party.users["prescriber"], patient=patient,
                                                   ndc=POMALIDOMIDE_4MG, quantity=21, days_supply=28,
                                                   now=timezone.now())[2]
              for party, patient in zip((ours, theirs), patients)]
    return patients, issued


CASES = [
    ("pharmacies_for", lambda w, r: [w["ours"].pharmacy, w["theirs"].pharmacy]),
    ("prescribers_for", lambda w, r: [w["ours"].prescriber, w["theirs"].prescriber]),
    ("patients_for", lambda w, r: r[0]),
    ("prescriptions_for", lambda w, r: r[1]),
]
USERS = [("ours", "pharmacist"), ("ours", "prescriber"), ("theirs", "delegate"), (None, "admin_user"),
         (None, "auditor_user")]


@pytest.mark.parametrize("scope", [name for name, _ in CASES])
@pytest.mark.parametrize("who", USERS)
def test_every_scope_and_role_finds_what_the_orm_finds(world, records, scope, who):
    party, role = who
    user = world[party].users[role] if party else world[role]
    targets = dict(CASES)[scope](world, records)
    for target in targets:
        queryset = getattr(scoping, scope)(user)
        expected = _orm(queryset, pk=target.pk)
        if expected is None:
            with pytest.raises(Http404):
                scoping.get_in_scope(queryset, pk=target.pk)
            continue
        scoping.get_in_scope(queryset, pk=target.pk)
        with mock.patch.object(SQLCompiler, "as_sql", autospec=True, side_effect=SQLCompiler.as_sql) as compiled:
            found = scoping.get_in_scope(getattr(scoping, scope)(user), pk=target.pk)
        assert compiled.call_count == 0  # the shape's statement, compiled before
        assert type(found) is type(expected) and _fields(found) == _fields(expected)
        assert found._state.adding is False and found._state.db == "default"
        for name in queryset.query.select_related or ():
            assert getattr(found, name) == getattr(expected, name)  # read with the row, not again
            assert found._meta.get_field(name).is_cached(found)


def test_a_shape_is_compiled_once_and_then_run_with_each_requests_values(world, records):
    user = world["admin_user"]
    first, second = records[1]
    scoping.get_in_scope(scoping.prescriptions_for(user), pk=first.pk)  # compiled here if not before
    with mock.patch.object(SQLCompiler, "as_sql", autospec=True, side_effect=SQLCompiler.as_sql) as compiled:
        found = scoping.get_in_scope(scoping.prescriptions_for(user), pk=second.pk)
    assert compiled.call_count == 0
    assert found.pk == second.pk and found.authorization_number == second.authorization_number
    assert found.program.slug == Prescription.objects.get(pk=second.pk).program.slug


def test_lookups_of_another_kind_are_left_to_the_orm(world, records):
    user = world["admin_user"]
    target = records[1][0]
    found = scoping.get_in_scope(scoping.prescriptions_for(user), authorization_number__iexact=target.authorization_number)
    assert found.pk == target.pk
    with pytest.raises(Http404):
        scoping.get_in_scope(scoping.prescriptions_for(user), authorization_number__iexact="nothing")
