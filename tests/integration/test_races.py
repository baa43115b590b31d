"""However many requests race, the database lets through at most one RDA per authorization and at most one
dispense per RDA. Real threads, real PostgreSQL connections, committed transactions."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from dispensing import dispenses, prescriptions, sweeps
from dispensing.models import DispenseAuthorization, Prescription
from rems.compliance_log.actions import Action
from rems.compliance_log.models import ComplianceLogEntry
from tests.api.flows import enroll, prescribe, request_rda
from tests.conftest import POMALIDOMIDE_4MG, Api

pytestmark = pytest.mark.django_db(transaction=True)

RACERS = 50


def _race(call):
    barrier = threading.Barrier(RACERS)

    def one(_):
        try:
            barrier.wait(timeout=30)
            return call(Api())
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        return list(pool.map(one, range(RACERS)))


def _in_thread(answers, call, *args):
    try:
        answers.append(call(Api(), *args))
    finally:
        connection.close()


def test_50_concurrent_dispense_requests_give_exactly_one_approval(world):
    ours = world["ours"]
    setup = Api()
    patient_id = enroll(setup, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    _, decision = prescribe(setup, ours.tokens["prescriber"], patient_id)
    number = decision["authorization_number"]

    results = _race(lambda api: request_rda(api, ours.tokens["pharmacist"], number))

    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(422) == RACERS - 1, statuses
    for status, body in results:
        if status == 422:
            assert "AUTHORIZATION_UNUSED" in {c["code"] for c in body["checks"] if not c["passed"]}
    assert DispenseAuthorization.objects.filter(prescription__authorization_number=number).count() == 1
    assert ComplianceLogEntry.objects.filter(action="dispense_authorization.request").count() == RACERS


def test_a_burst_of_unknown_numbers_from_one_pharmacy_gets_no_evaluation_past_the_limit(world, settings):
    from rems.core.identifiers import PRESCRIPTION_PREFIX, authorization_number_new

    settings.REMS_UNKNOWN_NUMBER_FAILURES = 10
    ours = world["ours"]

    results = _race(lambda api: request_rda(api, ours.tokens["pharmacist"],
                                            authorization_number_new(PRESCRIPTION_PREFIX)))

    refused_unseen = [body for status, body in results
                      if status == 422 and [c["code"] for c in body["checks"]] == ["MATCH_ATTEMPTS_LIMIT"]]
    evaluated = [body for status, body in results if body not in refused_unseen]
    assert len(evaluated) == 10 and len(refused_unseen) == RACERS - 10, [s for s, _ in results]


def test_50_concurrent_dispense_confirmations_record_exactly_one_dispense(world):
    ours = world["ours"]
    setup = Api()
    patient_id = enroll(setup, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    _, decision = prescribe(setup, ours.tokens["prescriber"], patient_id)
    _, rda = request_rda(setup, ours.tokens["pharmacist"], decision["authorization_number"])
    path = f"/api/v1/dispense-authorizations/{rda['rda_number']}/dispense"
    body = {"counseling_confirmed": True, "medication_guide_provided": True}

    results = _race(lambda api: api.post(path, body, as_=ours.tokens["pharmacist"]))

    statuses = sorted(status for status, _ in results)
    assert statuses.count(200) == 1, statuses
    assert statuses.count(409) == RACERS - 1, statuses
    assert ComplianceLogEntry.objects.filter(action=Action.DISPENSE_AUTHORIZATION_DISPENSE).count() == 1
    assert Prescription.objects.get(authorization_number=decision["authorization_number"]).status == "dispensed"


def test_concurrent_prescription_requests_for_one_patient_issue_one_authorization(world):
    ours = world["ours"]
    setup = Api()
    patient_id = enroll(setup, ours.tokens["prescriber"], risk_category="FNRP_ADULT")

    results = _race(lambda api: prescribe(api, ours.tokens["prescriber"], patient_id))

    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 1, statuses
    assert Prescription.objects.filter(patient_id=patient_id).count() == 1


def test_a_burst_of_wrong_birth_dates_cannot_slip_past_the_limit(world, settings):
    settings.REMS_BIRTH_DATE_FAILURES = 3
    ours = world["ours"]
    setup = Api()
    patient_id = enroll(setup, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    _, decision = prescribe(setup, ours.tokens["prescriber"], patient_id)
    number = decision["authorization_number"]
    settings.REMS_DISPENSE_RATE_PER_KEY = settings.REMS_DISPENSE_RATE_PER_PHARMACY = 1000
    counter = iter(range(RACERS))
    lock = threading.Lock()

    def attempt(api):
        with lock:
            i = next(counter)
        dob = "1990-05-01" if i == 0 else "1901-01-01"  # one right birth date among many wrong ones
        return request_rda(api, ours.tokens["pharmacist"], number, dob=dob)

    results = _race(attempt)

    failed = [{c["code"] for c in body["checks"] if not c["passed"]} for _, body in results]
    evaluated_wrong = sum("PATIENT_DOB_MATCH" in f for f in failed)
    assert evaluated_wrong == 3, failed
    approved = [body for status, body in results if status == 201]
    # The right birth date is approved only if it came before the limit was reached; never after.
    assert len(approved) <= 1
    assert sum(f == {"MATCH_ATTEMPTS_LIMIT"} for f in failed) == RACERS - 3 - len(approved)


def _right_request_while_a_failure_is_counted(world, *, kind, failures, counted):
    """A right request for a number while a failure of the pharmacy holds its turn, having counted itself
    (`counted`: the update it made to the counter, uncommitted); the failure commits once the request is seen
    waiting. Returns the request's answer and the number."""
    import psycopg
    from django.conf import settings as django_settings

    from dispensing.models import MatchLock

    ours = world["ours"]
    setup = Api()
    patient_id = enroll(setup, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    _, decision = prescribe(setup, ours.tokens["prescriber"], patient_id)
    number = decision["authorization_number"]
    now = timezone.now()
    lock = MatchLock.objects.create(pharmacy=ours.pharmacy, kind=kind, failures=failures, first_failure_at=now,
                                    last_failure_at=now, authorization_number=number if kind == "birth_date" else "")
    db = django_settings.DATABASES["default"]
    failure = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"])
    failure.execute("SELECT * FROM rems_match_turn(%s, %s, true)", [ours.pharmacy.pk, number])
    failure.execute(f"UPDATE dispensing_matchlock SET {counted} WHERE id = %s", [lock.pk])
    answers = []
    right = threading.Thread(target=_in_thread, args=(answers, request_rda, ours.tokens["pharmacist"], number))
    right.start()
    try:
        right.join(timeout=1.0)
        assert right.is_alive(), answers  # waiting for the failure's turn to end
        failure.commit()
        right.join(timeout=30)
    finally:
        failure.close()
    (answer,) = answers
    return answer, number


@pytest.mark.parametrize("kind", ["birth_date", "authorization_number"])
def test_a_right_request_waits_for_a_failure_being_counted_and_is_refused_when_it_locks(world, kind):
    """A failure that reaches the limit while a right request is being decided: the right request's answer comes
    after the failure's, so it is refused unseen, not approved."""
    (status, body), number = _right_request_while_a_failure_is_counted(
        world, kind=kind, failures=2, counted="failures = 3, locked_at = now()")
    assert status == 422 and [c["code"] for c in body["checks"]] == ["MATCH_ATTEMPTS_LIMIT"], body
    assert not DispenseAuthorization.objects.filter(prescription__authorization_number=number).exists()


def test_a_right_request_after_a_failure_that_stayed_under_the_limit_is_approved(world):
    (status, body), _ = _right_request_while_a_failure_is_counted(
        world, kind="birth_date", failures=1, counted="failures = 2")
    assert status == 201, body


@pytest.mark.parametrize("workers", [2, 4])
def test_a_sweep_on_several_connections_expires_each_row_once_with_one_log_entry(world, workers):
    from rems.program.models import Program
    from tests.factories import PatientFactory

    program = Program.objects.get(slug="pomalidomide")
    ours = world["ours"]
    issued = timezone.now() - timedelta(days=31)
    held_at = timezone.now() - timedelta(days=2)
    for i in range(23):
        patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="FNRP_ADULT")
        at = held_at if i % 4 == 0 else issued
        _, _, prescription = prescriptions.prescription_authorize(
            actor=ours.users["prescriber"], patient=patient, ndc=POMALIDOMIDE_4MG, quantity=21, days_supply=28, now=at)
        if i % 4 == 0:  # an RDA approved two days ago and never dispensed: it lapsed, its authorization did not
            dispenses.dispense_authorization_request(
                actor=ours.users["pharmacist"], pharmacy=ours.pharmacy,
                authorization_number=prescription.authorization_number, date_of_birth=patient.date_of_birth,
                ndc=POMALIDOMIDE_4MG, quantity=21, days_supply=28, now=at)

    def other_connections():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
            return cursor.fetchone()[0]

    before = other_connections()
    counts = sweeps.expire_lapsed(now=timezone.now(), batch_size=2, workers=workers)

    assert counts["dispense_authorizations"] == 6 and counts["prescriptions"] == 17
    assert DispenseAuthorization.objects.filter(status="expired").count() == 6
    assert Prescription.objects.filter(status="expired").count() == 17
    assert Prescription.objects.filter(status="issued").count() == 6  # freed by their RDA's lapse
    for action, expected in (("dispense_authorization.expire", 6), ("prescription.expire", 17)):
        entries = ComplianceLogEntry.objects.filter(action=action)
        assert entries.count() == expected
        assert entries.values("object_id").distinct().count() == expected
    assert sweeps.expire_lapsed(now=timezone.now(), batch_size=2, workers=workers) == {
        "dispense_authorizations": 0, "prescriptions": 0, "certifications": 0, "idempotency_records": 0}
    from rems.compliance_log.verify import log_verify

    assert log_verify().ok  # entries appended from several connections at once still chain
    # every worker's connection was closed (a backend takes a moment to leave pg_stat_activity)
    for _ in range(50):
        if other_connections() == before:
            break
        time.sleep(0.1)
    assert other_connections() == before


def test_a_prescription_decision_locks_its_patient_and_not_the_program(world):
    """Decisions for different patients must not queue on the program's row (nor deadlock with the foreign-key
    checks of other transactions, which take a key-share lock on it at commit)."""
    import psycopg
    from django.db import transaction

    from rems.program.models import AttestationKind, Program
    from rems.program.records import attestation_record
    from tests.factories import PatientFactory

    program = Program.objects.get(slug="pomalidomide")
    ours = world["ours"]
    patient = PatientFactory(prescriber=ours.prescriber, program=program, risk_category="MALE_ADULT")
    attestation_record(actor=ours.users["prescriber"], patient=patient, kind=AttestationKind.MALE_COUNSELING,
                       now=timezone.now())
    settings_dict = connection.settings_dict
    other = psycopg.connect(host=settings_dict["HOST"] or "127.0.0.1", port=settings_dict["PORT"] or 5432,
                            user=settings_dict["USER"], dbname=settings_dict["NAME"], autocommit=False)
    try:
        with transaction.atomic():
            prescriptions.prescription_authorize(actor=ours.users["prescriber"], patient=patient, ndc=POMALIDOMIDE_4MG,
                                              quantity=21, days_supply=28, now=timezone.now())
            # while the decision's transaction is open: the program's row is free, the patient's is not
            other.execute("SELECT 1 FROM rems_program WHERE id = %s FOR UPDATE NOWAIT", [program.pk])
            other.rollback()
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("SELECT 1 FROM rems_patient WHERE id = %s FOR NO KEY UPDATE NOWAIT", [patient.pk])
            other.rollback()
            # a record that points at the patient (a test, an attestation) is not held up by the decision
            other.execute("SELECT 1 FROM rems_patient WHERE id = %s FOR KEY SHARE NOWAIT", [patient.pk])
            other.rollback()
    finally:
        other.close()


def test_a_pharmacy_already_locked_is_refused_before_anything_of_its_request_is_evaluated(world):
    """Not even the release of a lapsed RDA, which any other request for the number would do first."""
    from rems.program.models import Program
    from tests.factories import PatientFactory

    ours = world["ours"]
    then = timezone.now() - timedelta(days=3)
    patient = PatientFactory(prescriber=ours.prescriber, program=Program.objects.get(slug="pomalidomide"),
                             risk_category="FNRP_ADULT")
    _, _, prescription = prescriptions.prescription_authorize(
        actor=ours.users["prescriber"], patient=patient, ndc=POMALIDOMIDE_4MG, quantity=21, days_supply=28, now=then)
    dispenses.dispense_authorization_request(
        actor=ours.users["pharmacist"], pharmacy=ours.pharmacy, authorization_number=prescription.authorization_number,
        date_of_birth=patient.date_of_birth, ndc=POMALIDOMIDE_4MG, quantity=21, days_supply=28, now=then)
    from dispensing.models import MatchLock

    MatchLock.objects.create(pharmacy=ours.pharmacy, kind="authorization_number", failures=10, first_failure_at=then,
                             last_failure_at=then, locked_at=then)

    status, body = request_rda(Api(), ours.tokens["pharmacist"], prescription.authorization_number,
                               dob=patient.date_of_birth.isoformat())

    assert status == 422 and [c["code"] for c in body["checks"]] == ["MATCH_ATTEMPTS_LIMIT"], body
    assert DispenseAuthorization.objects.get(prescription=prescription).status == "approved"  # lapsed, untouched
    assert not ComplianceLogEntry.objects.filter(action=Action.DISPENSE_AUTHORIZATION_EXPIRE).exists()
