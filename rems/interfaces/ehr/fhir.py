"""`POST /fhir/GuidanceResponse/$rems-etasu` (FHIR R4, the HL7 US Medication REMS implementation guide): the
status of every requirement of the medication's program for the patient, checked by the gate engine at this
moment. Nothing is recorded but the query itself, in the compliance log.

The caller authenticates with an API key (`Authorization: Bearer <key>` or `Token <key>`). A prescriber's office
finds its own patients by our identifier (`urn:rems:patient`), an identifier it linked, or name and birth date;
the program's administrators and auditors by our identifier only. A patient or a medication that is unknown, or
not the caller's to see, gets the same `failure`."""

from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from fhir.resources.guidanceresponse import GuidanceResponse
from fhir.resources.operationoutcome import OperationOutcome
from fhir.resources.parameters import Parameters

from accounts.services import permission_refusal_log
from dispensing.requirements import authorization_of, requirements_status
from rems.compliance_log.actions import Action
from rems.core.identifiers import PRESCRIPTION_PREFIX, MalformedIdentifier, authorization_number_parse
from rems.program.ehr import OUR_PATIENT, ehr_query_log, medication_programs, patients_identified
from rems.program.selectors import party_is_barred

from ..keys import KeyRefused, key_user
from ..scoping import PRESCRIBER_OFFICE, READERS, patients_for
from .messages import Unreadable, json_object, medication_codings, patient_identity, resource

FHIR_JSON = "application/fhir+json"
# The implementation guide the answers follow (its canonical URL: it publishes no OperationDefinition).
MODULE = "http://hl7.org/fhir/us/medication-rems"
UNKNOWN = ("The patient or the medication is not known to this REMS for this caller: no enrollment that the caller "
           "may see in a program of this medication.")


def _fhir(resource, status=200, headers=None):
    response = HttpResponse(resource.json(), status=status, content_type=FHIR_JSON)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def outcome(status, code, text, headers=None):
    """A 4xx answer as an OperationOutcome."""
    return _fhir(OperationOutcome.parse_obj({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": code, "diagnostics": text}]}), status, headers)


def _caller(request, now):
    """The key's user, from `Authorization: Bearer <key>` or `Token <key>`; None when there is no such header."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "token") or not key.strip():
        return None
    return key_user(key.strip(), now)[0]


def _parameter(parameters, *names):
    return next((p for p in parameters.parameter or [] if p.name in names), None)


def _guidance(status, subject, **fields):
    return GuidanceResponse.parse_obj({"resourceType": "GuidanceResponse", "status": status, "moduleUri": MODULE,
                                       **({"subject": subject} if subject else {}), **fields})


def answer(status, subject, checks=(), case=None, note=None):
    """The operation's output: `rems-etasu`, a GuidanceResponse holding one GuidanceResponse per check (named by
    its code, its message as the note) and the case number, in a contained Parameters."""
    inner = [{"name": check.code, "resource": _guidance(
        "success" if check.passed else "data-required", subject, note=[{"text": check.message}]).dict()}
        for check in checks]
    if case is not None:
        inner.append({"name": case[0], "valueString": case[1]})
    fields = {}
    if note:
        fields["note"] = [{"text": note}]
    if inner:
        fields["contained"] = [{"resourceType": "Parameters", "id": "etasuOutputParameters", "parameter": inner}]
        fields["outputParameters"] = {"reference": "#etasuOutputParameters"}
    return Parameters.parse_obj({"resourceType": "Parameters", "parameter": [
        {"name": "rems-etasu", "resource": _guidance(status, subject, **fields).dict()}]})


@csrf_exempt
def rems_etasu(request):
    now = timezone.now()
    if request.method != "POST":
        return outcome(405, "not-supported", "POST a Parameters resource.", {"Allow": "POST"})
    try:
        user = _caller(request, now)
    except KeyRefused as exc:
        return outcome(401, "login", str(exc), {"WWW-Authenticate": "Bearer"})
    if user is None:
        return outcome(401, "login", "Authenticate with an API key: Authorization: Bearer <key>.",
                       {"WWW-Authenticate": "Bearer"})
    if user.role not in PRESCRIBER_OFFICE | READERS:
        permission_refusal_log(user=user, path=request.path, method=request.method, reason="role", now=now)
        return outcome(403, "forbidden", "A prescriber's office, or the program's administrators and auditors, ask "
                                         "for a patient's requirements; a pharmacy asks for a dispense authorization.")
    if party_is_barred(user):
        permission_refusal_log(user=user, path=request.path, method=request.method,
                               reason="party suspended or revoked", now=now)
        return outcome(403, "forbidden", "The prescriber you act for is suspended or revoked in each of its programs.")
    try:
        parameters = resource(Parameters, json_object(request), "The body")
    except Unreadable as exc:
        return outcome(400, "invalid", str(exc))
    patient_parameter = _parameter(parameters, "patient")
    medication_parameter = _parameter(parameters, "medication")
    patient_resource = patient_parameter.resource if patient_parameter else None
    medication = medication_parameter.resource if medication_parameter else None
    if patient_resource is None or patient_resource.resource_type != "Patient":
        return outcome(400, "required", "The `patient` parameter is a Patient resource.")
    if medication is None or medication.resource_type not in ("Medication", "MedicationRequest"):
        return outcome(400, "required", "The `medication` parameter is a Medication or a MedicationRequest.")
    case_parameter = _parameter(parameters, "case_number", "caseNumber")
    case_number = _authorization_number(case_parameter.valueString if case_parameter else "")
    subject = {"reference": f"Patient/{patient_resource.id}"} if patient_resource.id else None

    programs = medication_programs(medication_codings(medication))
    identifiers, family, given, birth_date = patient_identity(patient_resource)
    by_name = user.role in PRESCRIBER_OFFICE
    if not by_name:  # the program's roles find a patient by the service's own identifier only
        identifiers = [(system, value) for system, value in identifiers if system == OUR_PATIENT]
    found = list(patients_identified(
        patients_for(user).filter(program__in=list(programs)).select_related("program"), identifiers,
        family=family, given=given, birth_date=birth_date, by_name=by_name,
    )[:2]) if programs else []
    if len(found) != 1:
        ehr_query_log(actor=user, action=Action.EHR_ETASU_QUERY, outcome="failure", now=now,
                      detail={"found": "none" if not found else "several"})
        return _fhir(answer("failure", subject, note=UNKNOWN))
    patient = found[0]
    decision, decision_facts = requirements_status(patient=patient, now=now)
    # A case number given finds that authorization of the patient's only; none given, her open one.
    if case_parameter is not None:
        authorization = authorization_of(patient=patient, number=case_number) if case_number else None
        number = authorization.authorization_number if authorization is not None else None
    else:
        open_one = decision_facts.history.open_prescription
        number = open_one.authorization_number if open_one is not None and open_one.expires_at > now else None
    case = (case_parameter.name if case_parameter else "case_number", number) if number else None
    status = "success" if decision.approved else "data-required"
    ehr_query_log(actor=user, action=Action.EHR_ETASU_QUERY, outcome=status, now=now, patient=patient,
                  program=patient.program, detail={"rule_set": decision.rule_set,
                                                   "failed": [c.code for c in decision.checks if not c.passed]})
    return _fhir(answer(status, subject, decision.checks, case))


def _authorization_number(text):
    """A case number as the prescription authorization number it is (typed any way the API accepts), or ""."""
    try:
        return authorization_number_parse(text or "", prefix=PRESCRIPTION_PREFIX, kind="prescription authorization")
    except MalformedIdentifier:
        return ""
