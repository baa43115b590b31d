"""The service, running, against what others wrote: the HL7 REMS guide's `$rems-etasu` input, an EHR's test
patients and MedicationRequests, and a real EHR's `order-sign` request (the shared fixtures' `fhir/`), posted
over HTTP as they are, adapted only where they name our patients and keys. Every answer is validated as FHIR R4
resources (`fhir.resources`) and as CDS Hooks 2.0 cards (`jsonschema`, with the rules of the CDS Hooks
specification written below as a schema)."""

import copy
import json
import time
import urllib.error
import urllib.request
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone
from fhir.resources.parameters import Parameters
from jsonschema import Draft202012Validator
from jwt.algorithms import ECAlgorithm

from accounts.models import Role
from accounts.services import api_key_issue
from rems.core.identifiers import npi_with_check_digit
from rems.program.certifications import certification_create
from rems.program.ehr import cds_client_register
from rems.program.models import Program
from rems.program.patients import patient_enroll
from rems.program.programs import BUNDLED, program_load
from rems.program.records import attestation_record
from rems.program.registry import prescriber_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

# CDS Hooks 2.0, "CDS Service Response" and "Card Attributes": the rules a response must keep.
_LINK = {"type": "object", "required": ["label", "url", "type"],
         "properties": {"label": {"type": "string", "minLength": 1}, "url": {"type": "string", "minLength": 1},
                        "type": {"enum": ["absolute", "smart"]}, "appContext": {"type": "string"}}}
_SOURCE = {"type": "object", "required": ["label"],
           "properties": {"label": {"type": "string", "minLength": 1}, "url": {"type": "string"},
                          "icon": {"type": "string"},
                          "topic": {"type": "object", "properties": {"system": {"type": "string"},
                                                                   "code": {"type": "string"},
                                                                   "display": {"type": "string"}}}}}
CARD = {"type": "object", "required": ["summary", "indicator", "source"],
        "properties": {"uuid": {"type": "string"}, "summary": {"type": "string", "minLength": 1, "maxLength": 140},
                       "detail": {"type": "string"}, "indicator": {"enum": ["info", "warning", "critical"]},
                       "source": _SOURCE, "links": {"type": "array", "items": _LINK},
                       "suggestions": {"type": "array"}, "selectionBehavior": {"enum": ["at-most-one", "any"]},
                       "overrideReasons": {"type": "array"}}}
RESPONSE = {"type": "object", "required": ["cards"],
            "properties": {"cards": {"type": "array", "items": CARD}, "systemActions": {"type": "array"}}}
SERVICE = {"type": "object", "required": ["hook", "description", "id"],
           "properties": {"hook": {"type": "string"}, "title": {"type": "string"},
                          "description": {"type": "string"}, "id": {"type": "string", "pattern": "^[^/]+$"},
                          "prefetch": {"type": "object", "additionalProperties": {"type": "string"}}}}
DISCOVERY = {"type": "object", "required": ["services"], "properties": {"services": {"type": "array",
                                                                                    "items": SERVICE}}}


def fixture(fixtures, path):
    return json.loads((fixtures / "fhir" / path).read_text())


def post(url, body, authorization, content_type):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": content_type, "Authorization": authorization})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.fixture
def service(live_server):
    """iPLEDGE loaded; a certified prescriber with a key; the fixtures' patients enrolled with it, by the names
    and birth dates the fixtures give them."""
    now = timezone.now()
    program_load(actor=None, data=json.loads((BUNDLED / "isotretinoin.json").read_text()), now=now)
    program = Program.objects.get(slug="isotretinoin")
    prescriber = prescriber_create(actor=None, npi=npi_with_check_digit("112233446"), first_name="Jane",
                                   last_name="Doe", email="jane.doe@example.org", now=now)
    certification_create(actor=None, program=program, prescriber=prescriber, now=now)
    user = UserFactory(role=Role.PRESCRIBER, prescriber=prescriber)
    _, key = api_key_issue(actor=None, user=user, now=now)
    patients = {}
    for first, last, born in (("August", "Samuels", "1989-03-12"), ("Alice", "Smith", "1990-05-24"),
                              ("Jon", "Snow", "1996-06-01")):
        patients[last] = patient_enroll(
            actor=user, prescriber=prescriber, program=program, first_name=first, last_name=last,
            date_of_birth=timezone.datetime.fromisoformat(born).date(), risk_category="CANNOT_GET_PREGNANT",
            agreement_signed_on=now.date(), irregular_cycles=False, now=now)
    attestation_record(actor=user, patient=patients["Samuels"], kind="counseling", now=now)
    return {"url": live_server.url, "key": key, "prescriber": prescriber, "user": user}


def etasu(service, body):
    status, answer = post(f"{service['url']}/fhir/GuidanceResponse/$rems-etasu", body, f"Bearer {service['key']}",
                          "application/fhir+json")
    assert status == 200, answer
    parameters = Parameters.parse_obj(answer)  # a valid FHIR R4 resource, or this raises
    [result] = [p for p in parameters.parameter if p.name == "rems-etasu"]
    guidance = result.resource
    assert guidance.resource_type == "GuidanceResponse"
    nested = {}
    for contained in guidance.contained or []:
        for parameter in contained.parameter:
            nested[parameter.name] = parameter.resource or parameter.valueString
    return guidance, nested


def test_the_guides_rems_etasu_input_is_answered_with_a_valid_guidance_response(fixtures, service):
    guidance, nested = etasu(service, fixture(fixtures, "ig-examples/rems-etasu-input.json"))

    # August Samuels, a patient who cannot get pregnant, counseled: every requirement met
    assert guidance.status == "success"
    assert guidance.subject.reference == "Patient/example-patient-123"
    assert {"PRESCRIBER_CERTIFIED", "PATIENT_ENROLLED", "COUNSELING_ATTESTED"} <= set(nested)
    assert all(r.resource_type == "GuidanceResponse" and r.status == "success" and r.note[0].text
               for r in nested.values())
    assert "case_number" not in nested  # the guide's case number is not one of ours


def test_an_ehrs_patient_and_medication_request_are_answered_with_what_is_missing(fixtures, service):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "resource": fixture(fixtures, "ehr/rems_smith_01_patient.json")},
        {"name": "medication", "resource": fixture(fixtures, "ehr/rems_smith_medicationrequest_IPledge.json")},
    ]}

    guidance, nested = etasu(service, body)

    assert guidance.status == "data-required"
    assert nested["COUNSELING_ATTESTED"].status == "data-required"


def test_an_ehrs_order_sign_request_is_answered_with_valid_cards(fixtures, service):
    key = ec.generate_private_key(ec.SECP384R1())
    cds_client_register(actor=None, issuer="https://test-ehr.example", now=timezone.now(),
                        jwk=json.loads(ECAlgorithm.to_jwk(key.public_key())))
    discovery = json.loads(urllib.request.urlopen(f"{service['url']}/cds-services", timeout=30).read())
    Draft202012Validator(DISCOVERY).validate(discovery)
    entry = fixture(fixtures, "ehr/cds-service-discovery-entry.json")
    ours = next(s for s in discovery["services"] if s["id"] == entry["id"])
    assert ours["hook"] == entry["hook"] and set(ours["prefetch"]) == set(entry["prefetch"])

    request = copy.deepcopy(fixture(fixtures, "ehr/order-sign-request-isotretinoin.json"))
    # the fixture's practitioner NPI has no valid check digit: the prescriber's own stands in for it
    request["prefetch"]["practitioner"]["identifier"][0]["value"] = service["prescriber"].npi
    url = f"{service['url']}/cds-services/rems-order-sign"
    now = int(time.time())
    token = jwt.encode({"iss": "https://test-ehr.example", "aud": url, "iat": now, "exp": now + 300,
                        "jti": str(uuid.uuid4())}, key, algorithm="ES384", headers={"kid": "test-ehr-1"})

    status, answer = post(url, request, f"Bearer {token}", "application/json")

    assert status == 200, answer
    Draft202012Validator(RESPONSE).validate(answer)
    # Jon Snow, enrolled but not counseled: the card says so, and links to his page
    [card] = answer["cards"]
    assert card["indicator"] == "warning" and "COUNSELING_ATTESTED" in card["detail"]
    assert card["source"]["label"] == "iPLEDGE REMS" and card["links"][0]["url"].startswith(service["url"])
