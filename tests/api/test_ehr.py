"""The REMS inside the EHR, over HTTP: FHIR `$rems-etasu` with API keys, CDS Hooks `order-sign` with the EHR's
signed JWTs, the EHRs' registration and the identifiers linked to an enrollment."""

import json
import time
import uuid
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.utils import timezone
from fhir.resources.parameters import Parameters
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from rems.compliance_log.models import ComplianceLogEntry
from rems.program.models import CdsClient

from .flows import DOB, enroll, ipledge_ready, record_test

pytestmark = pytest.mark.django_db

ETASU = "/fhir/GuidanceResponse/$rems-etasu"
ORDER_SIGN = "/cds-services/rems-order-sign"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
ISSUER = "https://ehr.example.org"


def fhir_post(api, body, token, scheme="Bearer"):
    headers = {"Authorization": f"{scheme} {token}"} if token else {}
    response = api.client.post(ETASU, data=json.dumps(body) if not isinstance(body, (bytes, str)) else body,
                               content_type="application/fhir+json", **{
                                   f"HTTP_{k.upper()}": v for k, v in headers.items()})
    return response.status_code, json.loads(response.content)


def etasu_input(patient_id=None, *, family="Lee", given="Ann", birth=DOB, medication=None, case=None):
    identifiers = [{"system": "urn:rems:patient", "value": str(patient_id)}] if patient_id else []
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "resource": {"resourceType": "Patient", "id": "ehr-123", "identifier": identifiers,
                                          "name": [{"use": "official", "family": family, "given": [given]}],
                                          "birthDate": birth}},
        {"name": "medication", "resource": medication or {
            "resourceType": "Medication", "code": {"coding": [{"system": RXNORM, "code": "6064"},
                                                              {"system": NDC, "code": "0245-0571-01"}]}}},
    ]}
    if case:
        body["parameter"].append({"name": case[0], "valueString": case[1]})
    return body


def guidance(answer):
    """The top GuidanceResponse and its nested ones by name (a check code, or case_number)."""
    Parameters.parse_obj(answer)  # a valid FHIR R4 Parameters resource
    top = answer["parameter"][0]
    assert top["name"] == "rems-etasu"
    response = top["resource"]
    nested = {}
    for contained in response.get("contained", []):
        for parameter in contained["parameter"]:
            nested[parameter["name"]] = parameter.get("resource") or parameter.get("valueString")
    return response, nested


def test_a_patient_who_meets_every_requirement_is_success_with_one_success_per_check(api, programs):
    token = programs["ours"].tokens["prescriber"]
    patient_id = ipledge_ready(api, token, last_name="Lee", first_name="Ann")

    status, answer = fhir_post(api, etasu_input(patient_id), token)

    assert status == 200
    response, nested = guidance(answer)
    assert response["status"] == "success" and response["subject"] == {"reference": "Patient/ehr-123"}
    assert {"PRESCRIBER_CERTIFIED", "PREGNANCY_TEST_FIRST", "PREGNANCY_TEST_SECOND", "CONTRACEPTION_STARTED",
            "COUNSELING_ATTESTED", "SURVEY_COMPLETED"} <= set(nested)
    assert all(r["status"] == "success" and r["note"][0]["text"] for r in nested.values())
    entry = ComplianceLogEntry.objects.filter(action="ehr.etasu_query").get()
    assert entry.outcome == "success" and str(entry.patient_id) == patient_id
    # the same patient by name and birth date, among the prescriber's own patients
    status, answer = fhir_post(api, etasu_input(), token, scheme="Token")
    assert guidance(answer)[0]["status"] == "success"


def test_a_missing_test_is_data_required_with_the_unmet_check_and_its_message(api, programs):
    token = programs["ours"].tokens["prescriber"]
    patient_id = enroll(api, token, program="isotretinoin", risk_category="CAN_GET_PREGNANT")
    record_test(api, token, patient_id, timedelta(days=21))

    status, answer = fhir_post(api, etasu_input(patient_id), token)

    response, nested = guidance(answer)
    assert status == 200 and response["status"] == "data-required"
    assert nested["PREGNANCY_TEST_SECOND"]["status"] == "data-required"
    assert "second negative pregnancy test" in nested["PREGNANCY_TEST_SECOND"]["note"][0]["text"]
    assert nested["PREGNANCY_TEST_FIRST"]["status"] == "success"


@pytest.mark.parametrize("name", ["case_number", "caseNumber"])
def test_the_case_number_finds_the_authorization_and_is_echoed(api, programs, name):
    token = programs["ours"].tokens["prescriber"]
    patient_id = ipledge_ready(api, token)
    status, decision = api.post("/api/v1/prescriptions/", {"patient": patient_id, "ndc": "00245-0571-01",
                                                           "quantity": 30, "days_supply": 30}, as_=token)
    number = decision["authorization_number"]

    _, answer = fhir_post(api, etasu_input(patient_id, case=(name, number)), token)
    assert guidance(answer)[1][name] == number
    # typed as on paper: grouped, in lower case
    typed = f"{number[:5]}-{number[5:10]}-{number[10:]}".lower()
    _, answer = fhir_post(api, etasu_input(patient_id, case=(name, typed)), token)
    assert guidance(answer)[1][name] == number
    # none given: the open authorization's number, under the guide's name
    _, answer = fhir_post(api, etasu_input(patient_id), token)
    assert guidance(answer)[1]["case_number"] == number
    _, answer = fhir_post(api, etasu_input(patient_id, case=(name, "PNOTAREALONE")), token)
    assert name not in guidance(answer)[1]


def test_another_prescribers_patient_and_an_unknown_one_get_the_same_failure(api, programs):
    ours, theirs = programs["ours"], programs["theirs"]
    theirs_patient = ipledge_ready(api, ours.tokens["prescriber"], last_name="Other")
    # a patient of ours in iPLEDGE, asked for by another prescriber's office (certified in pomalidomide only)
    answers = []
    for body in (etasu_input(theirs_patient, family="Other"), etasu_input(uuid.uuid4(), family="Nobody")):
        status, answer = fhir_post(api, body, theirs.tokens["prescriber"])
        assert status == 200
        answers.append(answer)
    assert answers[0] == answers[1]
    response, nested = guidance(answers[0])
    assert response["status"] == "failure" and nested == {}
    # a medication of no program, for our own patient: the same answer
    status, answer = fhir_post(api, etasu_input(theirs_patient, family="Other", medication={
        "resourceType": "Medication", "code": {"coding": [{"system": RXNORM, "code": "161"}]}}),
        ours.tokens["prescriber"])
    assert answer == answers[0]


def test_anonymous_wrong_resources_and_pharmacies_are_refused_with_an_operation_outcome(api, programs):
    token = programs["ours"].tokens["prescriber"]
    cases = [
        (etasu_input(), None, 401),
        (etasu_input(), "not-a-key", 401),
        ({"resourceType": "Patient", "id": "x"}, token, 400),
        ({"resourceType": "Parameters", "parameter": [{"name": "patient", "valueString": "x"}]}, token, 400),
        ("[1, 2]", token, 400),
        ("{" * 5000 + "}" * 5000, token, 400),
        ({"resourceType": "Parameters", "parameter": [{"name": "patient", "resource": {"resourceType": "Nope"}}]},
         token, 400),
        (etasu_input(), programs["ours"].tokens["pharmacist"], 403),
    ]
    for body, key, expected in cases:
        status, answer = fhir_post(api, body, key)
        assert status == expected, (body if len(str(body)) < 200 else "deep", answer)
        assert answer["resourceType"] == "OperationOutcome" and answer["issue"][0]["diagnostics"]
    assert api.client.get(ETASU).status_code == 405


# --- CDS Hooks -----------------------------------------------------------------------------------------------
@pytest.fixture
def ehr_key(api, programs):
    """An EHR registered by the program administrator, with its P-384 signing key."""
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    status, client = api.post("/api/v1/cds-clients/", {"issuer": ISSUER, "jwk": jwk}, as_=programs["admin"])
    assert status == 201 and client["algorithm"] == "ES384"
    return key


def signed(key, *, issuer=ISSUER, audience="http://testserver" + ORDER_SIGN, lifetime=300, jti=None,
           algorithm="ES384"):
    now = int(time.time())
    return jwt.encode({"iss": issuer, "aud": audience, "iat": now, "exp": now + lifetime,
                       "jti": jti or str(uuid.uuid4()), "sub": "ehr-client"}, key, algorithm=algorithm)


def order_sign_request(*, patient=None, npi=None, rxnorm="6064", ndc=None):
    codings = [{"system": RXNORM, "code": rxnorm}] + ([{"system": NDC, "code": ndc}] if ndc else [])
    order = {"resourceType": "MedicationRequest", "id": "mr-1", "status": "draft", "intent": "order",
             "medicationCodeableConcept": {"coding": codings}, "subject": {"reference": "Patient/pat-1"}}
    prefetch = {}
    if patient is not None:
        prefetch["patient"] = patient
    if npi is not None:
        prefetch["practitioner"] = {"resourceType": "Practitioner", "id": "pra-1", "identifier": [
            {"system": "http://hl7.org/fhir/sid/us-npi", "value": npi}]}
    return {"hookInstance": str(uuid.uuid4()), "hook": "order-sign",
            "context": {"userId": "Practitioner/pra-1", "patientId": "pat-1",
                        "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                        "entry": [{"resource": order}]}},
            "prefetch": prefetch}


def fhir_patient(family="Lee", given="Ann", birth=DOB, identifiers=()):
    return {"resourceType": "Patient", "id": "pat-1", "name": [{"family": family, "given": [given]}],
            "birthDate": birth, "identifier": list(identifiers)}


def hook(api, body, token, path=ORDER_SIGN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    response = api.client.post(path, data=json.dumps(body), content_type="application/json", **headers)
    return response.status_code, json.loads(response.content)


def test_discovery_lists_the_order_sign_and_order_select_services_with_their_prefetch(api):
    response = api.client.get("/cds-services")
    services = {s["hook"]: s for s in response.json()["services"]}
    assert response.status_code == 200 and set(services) == {"order-sign", "order-select"}
    assert services["order-sign"]["id"] == "rems-order-sign"
    assert all(set(s["prefetch"]) == {"patient", "practitioner"} for s in services.values())


def test_order_select_checks_the_selected_orders_only(api, programs, ehr_key):
    ours = programs["ours"]
    enroll(api, ours.tokens["prescriber"], program="isotretinoin", risk_category="CANNOT_GET_PREGNANT",
           first_name="Ann", last_name="Lee")
    body = order_sign_request(patient=fhir_patient(), npi=ours.prescriber.npi)
    body["hook"] = "order-select"
    path = "/cds-services/rems-order-select"
    body["context"]["selections"] = ["MedicationRequest/mr-1"]
    status, answer = hook(api, body, signed(ehr_key, audience="http://testserver" + path), path=path)
    assert status == 200 and {c["indicator"] for c in answer["cards"]} == {"warning"}  # counseling not on file
    body["context"]["selections"] = ["MedicationRequest/another"]
    status, answer = hook(api, body, signed(ehr_key, audience="http://testserver" + path), path=path)
    assert status == 200 and answer == {"cards": []}


def test_order_sign_for_a_patient_with_missing_requirements_returns_cards_critical_for_the_test(api, programs,
                                                                                                  ehr_key):
    ours = programs["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], program="isotretinoin", risk_category="CAN_GET_PREGNANT",
                        first_name="Ann", last_name="Lee")
    record_test(api, ours.tokens["prescriber"], patient_id, timedelta(days=21))

    status, answer = hook(api, order_sign_request(patient=fhir_patient(), npi=ours.prescriber.npi), signed(ehr_key))

    assert status == 200
    cards = answer["cards"]
    by_code = {card["detail"].split("**")[1]: card for card in cards}
    assert by_code["PREGNANCY_TEST_SECOND"]["indicator"] == "critical"
    assert by_code["CONTRACEPTION_ATTESTED"]["indicator"] == "warning"
    for card in cards:
        assert len(card["summary"]) <= 140 and card["source"]["label"] == "iPLEDGE REMS"
        assert card["links"][0]["url"] == f"http://testserver/patients/{patient_id}/"
    assert ComplianceLogEntry.objects.filter(action="ehr.cds_hook", detail__hook="order-sign", outcome="unmet").count() == 1


def test_order_sign_for_a_patient_who_meets_everything_says_so_and_a_non_rems_drug_gets_no_cards(api, programs,
                                                                                               ehr_key):
    ours = programs["ours"]
    ipledge_ready(api, ours.tokens["prescriber"], first_name="Ann", last_name="Lee")
    status, answer = hook(api, order_sign_request(patient=fhir_patient(), npi=ours.prescriber.npi), signed(ehr_key))
    assert status == 200 and [c["indicator"] for c in answer["cards"]] == ["info"]

    status, answer = hook(api, order_sign_request(patient=fhir_patient(), npi=ours.prescriber.npi, rxnorm="161"),
                          signed(ehr_key))
    assert status == 200 and answer == {"cards": []}


def test_an_unidentified_patient_or_prescriber_never_gets_an_all_clear(api, programs, ehr_key):
    ours = programs["ours"]
    ipledge_ready(api, ours.tokens["prescriber"], first_name="Ann", last_name="Lee")
    for body in (order_sign_request(patient=fhir_patient(), npi=None),
                 order_sign_request(patient=None, npi=ours.prescriber.npi),
                 order_sign_request(patient=fhir_patient(family="Stranger"), npi=ours.prescriber.npi),
                 order_sign_request(patient=fhir_patient(), npi=programs["theirs"].prescriber.npi)):
        status, answer = hook(api, body, signed(ehr_key))
        assert status == 200 and [c["indicator"] for c in answer["cards"]] == ["warning"], answer
        assert "not" in answer["cards"][0]["summary"].lower()


def test_an_ehr_identifier_linked_to_the_enrollment_finds_the_patient(api, programs, ehr_key):
    ours = programs["ours"]
    patient_id = ipledge_ready(api, ours.tokens["prescriber"], first_name="Ann", last_name="Lee")
    mrn = {"system": "urn:oid:1.2.3.4.5", "value": "MRN-77"}
    assert api.post(f"/api/v1/patients/{patient_id}/identifiers/", mrn, as_=ours.tokens["delegate"])[0] == 201
    assert api.post(f"/api/v1/patients/{patient_id}/identifiers/", mrn, as_=ours.tokens["prescriber"])[0] == 200
    renamed = fhir_patient(family="Married-Name", identifiers=[mrn])

    status, answer = hook(api, order_sign_request(patient=renamed, npi=ours.prescriber.npi), signed(ehr_key))

    assert [c["indicator"] for c in answer["cards"]] == ["info"]
    # another office cannot see or link the enrollment's identifiers
    theirs = programs["theirs"].tokens["prescriber"]
    assert api.get(f"/api/v1/patients/{patient_id}/identifiers/", as_=theirs)[0] == 404
    assert api.post(f"/api/v1/patients/{patient_id}/identifiers/", mrn, as_=theirs)[0] == 404


@pytest.mark.parametrize("problem", ["no token", "replayed jti", "unregistered key", "other audience", "expired",
                                     "too long a lifetime", "wrong algorithm", "not a jwt"])
def test_order_sign_refuses_what_is_not_a_fresh_token_of_a_registered_ehr(api, programs, ehr_key, problem):
    body = order_sign_request(patient=fhir_patient(), npi=programs["ours"].prescriber.npi)
    stranger = ec.generate_private_key(ec.SECP384R1())
    jti = str(uuid.uuid4())
    token = {
        "no token": None,
        "replayed jti": signed(ehr_key, jti=jti),
        "unregistered key": signed(stranger),
        "other audience": signed(ehr_key, audience="http://testserver/cds-services/other"),
        "expired": signed(ehr_key, lifetime=-120),
        "too long a lifetime": signed(ehr_key, lifetime=3600),
        "wrong algorithm": signed(rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                  algorithm="RS384"),
        "not a jwt": "abc.def",
    }[problem]
    if problem == "replayed jti":
        assert hook(api, body, token)[0] == 200
    status, answer = hook(api, body, token)
    assert status == 401 and answer["error"], answer


@pytest.mark.parametrize("body", [
    {"hook": "order-select", "hookInstance": "x", "context": {}},
    {"hook": "order-sign", "hookInstance": "x", "context": {"draftOrders": {"resourceType": "Patient"}}},
    {"hook": "order-sign", "context": {"draftOrders": {"resourceType": "Bundle", "type": "collection"}}},
])
def test_a_malformed_order_sign_request_is_a_400(api, programs, ehr_key, body):
    status, answer = hook(api, body, signed(ehr_key))
    assert status == 400 and answer["error"]


# --- Registration ----------------------------------------------------------------------------------------
def _jwk(key):
    algorithm = ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
    return json.loads(algorithm.to_jwk(key.public_key()))


@pytest.mark.parametrize("jwk, expected", [
    (lambda: _jwk(ec.generate_private_key(ec.SECP384R1())), 201),
    (lambda: _jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048)), 201),
    (lambda: _jwk(ec.generate_private_key(ec.SECP256R1())), 400),
    (lambda: _jwk(rsa.generate_private_key(public_exponent=65537, key_size=1024)), 400),
    (lambda: json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()))), 400),  # a private key
    (lambda: {"kty": "oct", "k": "c2VjcmV0"}, 400),
    (lambda: "not an object", 400),
], ids=["EC P-384", "RSA 2048", "EC P-256", "RSA 1024", "private", "symmetric", "text"])
def test_an_ehr_is_registered_with_a_public_key_of_the_allowed_kinds(api, programs, jwk, expected):
    status, body = api.post("/api/v1/cds-clients/", {"issuer": f"https://{uuid.uuid4()}.example", "jwk": jwk()},
                            as_=programs["admin"])
    assert status == expected, body


def test_an_issuer_is_registered_once_by_the_administrator_only(api, programs):
    jwk = _jwk(ec.generate_private_key(ec.SECP384R1()))
    assert api.post("/api/v1/cds-clients/", {"issuer": ISSUER, "jwk": jwk}, as_=programs["admin"])[0] == 201
    assert api.post("/api/v1/cds-clients/", {"issuer": ISSUER, "jwk": jwk}, as_=programs["admin"])[0] == 409
    assert api.post("/api/v1/cds-clients/", {"issuer": "x", "jwk": jwk},
                    as_=programs["ours"].tokens["prescriber"])[0] == 403
    assert CdsClient.objects.count() == 1
    entry = ComplianceLogEntry.objects.get(action="cds_client.register")
    assert entry.detail == {"issuer": ISSUER, "algorithm": "ES384"}


def test_the_sweep_forgets_token_ids_once_their_tokens_have_expired(db):
    from dispensing.sweeps import expire_lapsed
    from rems.program.ehr import token_id_use

    now = timezone.now()
    assert token_id_use(issuer=ISSUER, jti="old", expires_at=now - timedelta(seconds=1))
    assert token_id_use(issuer=ISSUER, jti="live", expires_at=now + timedelta(minutes=4))
    assert not token_id_use(issuer=ISSUER, jti="live", expires_at=now + timedelta(minutes=4))

    expire_lapsed(now=now)

    assert token_id_use(issuer=ISSUER, jti="old", expires_at=now + timedelta(minutes=5))  # forgotten: it had expired
    assert not token_id_use(issuer=ISSUER, jti="live", expires_at=now + timedelta(minutes=4))


def test_a_retired_registration_is_refused_and_its_issuer_may_register_a_new_key(api, programs, ehr_key):
    ours = programs["ours"]
    body = order_sign_request(patient=fhir_patient(), npi=ours.prescriber.npi)
    client = CdsClient.objects.get(issuer=ISSUER)
    assert api.post(f"/api/v1/cds-clients/{client.pk}/retire", {"reason": ""}, as_=programs["admin"])[0] == 400
    status, retired = api.post(f"/api/v1/cds-clients/{client.pk}/retire", {"reason": "key rotated"},
                               as_=programs["admin"])
    assert status == 200 and retired["retired_at"]
    assert api.post(f"/api/v1/cds-clients/{client.pk}/retire", {"reason": "again"}, as_=programs["admin"])[0] == 409
    assert hook(api, body, signed(ehr_key))[0] == 401

    new_key = ec.generate_private_key(ec.SECP384R1())
    assert api.post("/api/v1/cds-clients/", {"issuer": ISSUER, "jwk": _jwk(new_key)}, as_=programs["admin"])[0] == 201
    assert hook(api, body, signed(ehr_key))[0] == 401
    assert hook(api, body, signed(new_key))[0] == 200
    entry = ComplianceLogEntry.objects.get(action="cds_client.retire")
    assert entry.detail == {"issuer": ISSUER, "reason": "key rotated"}
