"""What auditors use: the log with its filters, exports, verification, reports and a prescription's history."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from rems.compliance_log.actions import Action
from rems.compliance_log.models import ComplianceLogEntry

from .flows import confirm_dispense, enroll, prescribe, request_rda

pytestmark = pytest.mark.django_db


@pytest.fixture
def activity(api, world):
    """Approved and denied decisions of both kinds, a dispense and a reversal."""
    ours = world["ours"]
    token = ours.tokens["prescriber"]
    approved = []
    for _ in range(3):
        patient_id = enroll(api, token, risk_category="FNRP_ADULT")
        status, decision = prescribe(api, token, patient_id)
        assert status == 201
        approved.append(decision)
    denied_patient = enroll(api, token, risk_category="MALE_ADULT")
    assert prescribe(api, token, denied_patient)[0] == 422  # no counseling attestation
    first, second = approved[0]["authorization_number"], approved[1]["authorization_number"]
    assert request_rda(api, ours.tokens["pharmacist"], first, dob="1900-01-01")[0] == 422
    _, rda = request_rda(api, ours.tokens["pharmacist"], first)
    confirm_dispense(api, ours.tokens["pharmacist"], rda["rda_number"])
    _, rda2 = request_rda(api, ours.tokens["pharmacist"], second)
    api.post(f"/api/v1/dispense-authorizations/{rda2['rda_number']}/reverse", {"reason": "not picked up"},
             as_=ours.tokens["pharmacist"])
    return {"approved": approved, "rda": rda, "rda2": rda2}


def _all_pages(api, token, path):
    seqs, url = [], path
    while url:
        status, page = api.get(url, as_=token)
        assert status == 200, page
        seqs += [e["seq"] for e in page["results"]]
        url = page["next"].replace("http://testserver", "") if page["next"] else None
    return seqs


@pytest.mark.parametrize("query, direct", [
    ("", {}),
    ("action=prescription.authorize", {"action": "prescription.authorize"}),
    ("outcome=denied", {"outcome": "denied"}),
    ("failed_check=PATIENT_DOB_MATCH", {"checks__contains": [{"code": "PATIENT_DOB_MATCH", "passed": False}]}),
    ("check_code=MALE_COUNSELING_ATTESTED", {"checks__contains": [{"code": "MALE_COUNSELING_ATTESTED"}]}),
    (f"program=pomalidomide&action={Action.DISPENSE_AUTHORIZATION_DISPENSE}",
     {"program": "pomalidomide", "action": Action.DISPENSE_AUTHORIZATION_DISPENSE}),
])
def test_filters_and_pages_return_what_a_direct_query_returns(api, world, activity, query, direct):
    seqs = _all_pages(api, world["auditor"], f"/api/v1/audit-events/?page_size=3&{query}")
    expected = list(ComplianceLogEntry.objects.filter(**direct).order_by("-seq").values_list("seq", flat=True))
    assert seqs == expected and expected


def test_party_and_time_filters(api, world, activity):
    pharmacy = world["ours"].pharmacy.pk
    seqs = _all_pages(api, world["auditor"], f"/api/v1/audit-events/?pharmacy={pharmacy}")
    assert seqs == list(ComplianceLogEntry.objects.filter(pharmacy_id=pharmacy).order_by("-seq")
                        .values_list("seq", flat=True))
    future = (timezone.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert _all_pages(api, world["auditor"], f"/api/v1/audit-events/?occurred_after={future}") == []


def test_pages_stay_stable_while_entries_are_added(api, world, activity):
    status, first = api.get("/api/v1/audit-events/?page_size=5", as_=world["auditor"])
    enroll(api, world["ours"].tokens["prescriber"], risk_category="FNRP_ADULT")  # a new entry arrives
    status, second = api.get(first["next"].replace("http://testserver", ""), as_=world["auditor"])
    assert min(e["seq"] for e in first["results"]) > max(e["seq"] for e in second["results"])


def test_bad_filters_are_400(api, world):
    for query in ("patient=nope", "occurred_after=yesterday", "failed_check=lower", "unknown=1"):
        status, body = api.get(f"/api/v1/audit-events/?{query}", as_=world["auditor"])
        assert status == 400, (query, body)


def test_the_csv_export_matches_the_filtered_log(api, world, activity):
    response = api.client.get("/api/v1/audit-events/export.csv?outcome=denied",
                              HTTP_AUTHORIZATION=f"Token {world['auditor']}")
    assert response.status_code == 200 and response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    expected = list(ComplianceLogEntry.objects.filter(outcome="denied").order_by("seq"))
    assert [int(r["seq"]) for r in rows] == [e.seq for e in expected]
    assert rows[0]["failed_checks"] and json.loads(rows[0]["checks"])


def test_the_jsonl_export_matches_the_log(api, world, activity):
    response = api.client.get("/api/v1/audit-events/export.jsonl", HTTP_AUTHORIZATION=f"Token {world['auditor']}")
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [line["seq"] for line in lines] == list(ComplianceLogEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert all("entry_hash" in line for line in lines)


def test_verification_over_the_api(api, world, activity):
    status, body = api.get("/api/v1/audit-events/verify", as_=world["auditor"])
    assert status == 200 and body["ok"] is True and body["entries_checked"] == ComplianceLogEntry.objects.count()
    assert api.get("/api/v1/audit-events/verify", as_=world["ours"].tokens["pharmacist"])[0] == 403


def test_a_prescriptions_history_in_order_with_reasons(api, world, activity):
    approved = activity["approved"][0]
    prescription_id = approved["prescription_id"]

    status, history = api.get(f"/api/v1/prescriptions/{prescription_id}/history", as_=world["auditor"])

    assert status == 200
    actions = [(e["action"], e["outcome"]) for e in history["events"]]
    assert actions == [
        ("prescription.authorize", "approved"),
        ("dispense_authorization.request", "denied"),
        ("dispense_authorization.request", "approved"),
        (Action.DISPENSE_AUTHORIZATION_DISPENSE, "dispensed"),
    ]
    denied = history["events"][1]
    assert [c["code"] for c in denied["checks"] if not c["passed"]] == ["PATIENT_DOB_MATCH"]
    assert history["events"][0]["id"] == approved["decision_id"]
    # the prescriber sees its own prescription's history; another prescriber does not
    assert api.get(f"/api/v1/prescriptions/{prescription_id}/history",
                   as_=world["ours"].tokens["prescriber"])[0] == 200
    assert api.get(f"/api/v1/prescriptions/{prescription_id}/history",
                   as_=world["theirs"].tokens["prescriber"])[0] == 404


def test_reports_count_decisions_failed_checks_and_events(api, world, activity):
    status, report = api.get("/api/v1/reports/?period=day&program=pomalidomide", as_=world["auditor"])

    assert status == 200, report
    by_outcome = {(r["decision"], r["outcome"]): r["count"] for r in report["decisions"]}
    assert by_outcome == {("prescription", "approved"): 3, ("prescription", "denied"): 1,
                          ("dispense", "approved"): 2, ("dispense", "denied"): 1}
    failed = {(r["decision"], r["code"]): r["count"] for r in report["failed_checks"]}
    assert failed == {("prescription", "MALE_COUNSELING_ATTESTED"): 1, ("dispense", "PATIENT_DOB_MATCH"): 1}
    assert report["time_to_dispense"][0]["dispenses"] == 1
    assert report["rdas_reversed"][0]["count"] == 1
    assert report["pregnancy_reports"] == [] and report["authorizations_expired_undispensed"] == []


def test_reports_for_one_pharmacy(api, world, activity):
    status, report = api.get(f"/api/v1/reports/?pharmacy={world['theirs'].pharmacy.pk}", as_=world["auditor"])
    assert status == 200 and report["decisions"] == [] and report["rdas_reversed"] == []


def test_exports_keep_quotes_backslashes_and_newlines_intact(api, world):
    from rems.compliance_log.writer import log_entry_write

    tricky = {"reason": 'said "no", then \\ left\nfor good; ok', "comma": "a,b"}
    action = Action.PATIENT_CHANGE_RISK_CATEGORY  # one that the set-up writes none of
    entry = log_entry_write(actor=None, action=action, outcome="recorded", object_type="t", object_id="1",
                            now=timezone.now(), detail=tricky)
    auth = {"HTTP_AUTHORIZATION": f"Token {world['auditor']}"}

    jsonl = b"".join(api.client.get(f"/api/v1/audit-events/export.jsonl?action={action}", **auth).streaming_content)
    csv_text = b"".join(api.client.get(f"/api/v1/audit-events/export.csv?action={action}", **auth).streaming_content)

    [line] = jsonl.decode().splitlines()
    assert json.loads(line)["detail"] == tricky and json.loads(line)["id"] == str(entry.id)
    [row] = list(csv.DictReader(io.StringIO(csv_text.decode())))
    assert json.loads(row["detail"]) == tricky
