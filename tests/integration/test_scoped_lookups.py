"""A lookup in scope (`scoping.get_in_scope`) is compiled once per shape and run as a prepared statement: for every
scope and role it finds exactly what the ORM finds, with the same related rows, and refuses what the ORM would not
find."""

from unittest import mock

import pytest
from django.db.models.sql.compiler import SQLCompiler
from django.http import Http404

from dispensing.models import DispenseAuthorization, MatchLock, Prescription
from rems.interfaces import scoping
from rems.program.models import Certification, Notification
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def _fields(obj):
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}


def _orm(queryset, **lookup):
    return queryset.filter(**lookup).order_by("pk").first() if not queryset.ordered else queryset.filter(**lookup).first()


@pytest.fixture
def records(world, program):
    from dispensing import dispenses, prescriptions
    from tests.conftest import POMALIDOMIDE_4MG

    ours, theirs = world["ours"], world["theirs"]
    patients = [PatientFactory(prescriber=party.prescriber, program=program, risk_category="FNRP_ADULT")
                for party in (ours, theirs)]
    from django.utils import timezone

    issued = [prescriptions.prescription_authorize(actor=party.users["prescriber"], patient=patient,
                                                   ndc=POMALIDOMIDE_4MG, quantity=21, days_supply=28,
                                                   now=timezone.now())[2]
              for party, patient in zip((ours, theirs), patients)]
    rdas = [dispenses.dispense_authorization_request(
        actor=party.users["pharmacist"], pharmacy=party.pharmacy, authorization_number=rx.authorization_number,
        date_of_birth=patient.date_of_birth, ndc=POMALIDOMIDE_4MG, quantity=21, days_supply=28,
        now=timezone.now())[2] for party, patient, rx in zip((ours, theirs), patients, issued)]
    locks = [MatchLock.objects.create(pharmacy=party.pharmacy, kind="authorization_number", failures=1,
                                      first_failure_at=timezone.now(), last_failure_at=timezone.now())
             for party in (ours, theirs)]
    for party in (ours, theirs):
        Notification.objects.create(recipient=party.users["pharmacist"], kind="match_lock", title="t", body="b",
                                    subject_type="match_lock", subject_id=str(party.pharmacy.pk),
                                    due_on=timezone.now().date(), send_at=timezone.now(),
                                    next_attempt_at=timezone.now(), created_at=timezone.now())
    return patients, issued, rdas, locks


CASES = [
    ("pharmacies_for", lambda w, r: [w["ours"].pharmacy, w["theirs"].pharmacy]),
    ("prescribers_for", lambda w, r: [w["ours"].prescriber, w["theirs"].prescriber]),
    ("patients_for", lambda w, r: r[0]),
    ("prescriptions_for", lambda w, r: r[1]),
    ("dispense_authorizations_for", lambda w, r: r[2]),
    ("certifications_for", lambda w, r: list(Certification.objects.all())),
    ("users_for", lambda w, r: [w[p].users[k] for p in ("ours", "theirs") for k in ("pharmacist", "prescriber")]),
    ("match_locks_for", lambda w, r: r[3]),
    ("notifications_for", lambda w, r: list(Notification.objects.all())),
]
USERS = [("ours", "pharmacist"), ("ours", "prescriber"), ("theirs", "delegate"), ("theirs", "pharmacy_manager"),
         (None, "admin_user"), (None, "auditor_user")]


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


def test_lookups_that_join_one_table_through_different_relations_never_share_a_statement(world, records):
    """The same table joined through another foreign key is another statement, whichever was compiled first."""
    rda = records[2][0]
    pharmacist = world["ours"].users["pharmacist"]
    by_requester = DispenseAuthorization.objects.filter(requested_by__pharmacy_id=pharmacist.pharmacy_id)
    by_dispenser = DispenseAuthorization.objects.filter(dispensed_by__pharmacy_id=pharmacist.pharmacy_id)
    assert scoping.get_in_scope(by_requester, pk=rda.pk).pk == rda.pk
    with pytest.raises(Http404):  # never dispensed: no dispenser, whatever the requester's pharmacy
        scoping.get_in_scope(by_dispenser, pk=rda.pk)
    assert scoping.get_in_scope(by_requester, pk=rda.pk).pk == rda.pk


def test_locking_and_reversed_lookups_are_left_to_the_orm(world, records):
    from django.db import transaction

    rx = records[1][0]
    with transaction.atomic():
        with mock.patch.object(SQLCompiler, "as_sql", autospec=True, side_effect=SQLCompiler.as_sql) as compiled:
            scoping.get_in_scope(Prescription.objects.select_for_update(), pk=rx.pk)
            scoping.get_in_scope(Prescription.objects.order_by("issued_at").reverse(), pk=rx.pk)
    assert compiled.call_count == 2


def test_a_number_out_of_the_columns_range_is_not_found(world, records):
    with pytest.raises(Http404):
        scoping.get_in_scope(scoping.match_locks_for(world["admin_user"]), pk=2**40)
