"""CDS Hooks 2.0: `GET /cds-services` (discovery), `POST /cds-services/rems-order-sign` (hook `order-sign`) and
`POST /cds-services/rems-order-select` (hook `order-select`).

While a prescriber selects or signs an order, the EHR sends the draft orders and, prefetched, the patient and the
ordering practitioner. For each order of a REMS drug, the cards say what the patient's next prescription still needs, one
card per unmet requirement, from the same gate engine as the API. A drug outside every program gets no card. A
practitioner or a patient the service cannot identify never gets an "all clear": a card says what could not be
checked. The service never calls back into the EHR's FHIR server."""

import uuid

from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from fhir.resources.medicationrequest import MedicationRequest
from fhir.resources.patient import Patient as FhirPatient
from fhir.resources.practitioner import Practitioner

from dispensing.requirements import requirements_status
from rems.compliance_log.actions import Action
from rems.program.ehr import NPI, ehr_query_log, medication_programs, patients_identified
from rems.program.models import Patient, Prescriber

from ..fixes import PRESCRIBER as FIXES
from .jwt_auth import TokenRefused, cds_client_authenticated
from .messages import Unreadable, json_object, medication_codings, patient_identity, resource

SERVICE_ID = "rems-order-sign"
SELECT_SERVICE_ID = "rems-order-select"
SUMMARY_LIMIT = 140
# A failed check is critical when the drug may harm now: a pregnancy-test problem, an enrollment that is not
# active, or no rules to decide with. Every other unmet requirement is a warning.
CRITICAL = {"PATIENT_ENROLLED", "RULE_SET_IN_FORCE"}

DESCRIPTION = ("For an order of a drug under a REMS this service administers (pomalidomide, lenalidomide, thalidomide, "
               "isotretinoin), what the patient's next prescription still needs: enrollment, certification, "
               "pregnancy tests, contraception, counseling and surveys, checked at this moment.")
# The prefetch the implementation guide recommends that the service uses: the patient and the ordering practitioner.
PREFETCH = {"patient": "Patient/{{context.patientId}}", "practitioner": "{{context.userId}}"}
SERVICES = [
    {"hook": "order-sign", "id": SERVICE_ID, "title": "REMS requirements", "description": DESCRIPTION,
     "prefetch": PREFETCH},
    {"hook": "order-select", "id": SELECT_SERVICE_ID, "title": "REMS requirements", "description": DESCRIPTION,
     "prefetch": PREFETCH},
]


def _error(status, text, headers=None):
    response = JsonResponse({"error": text}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def discovery(request):
    if request.method != "GET":
        return _error(405, "GET the services.", {"Allow": "GET"})
    return JsonResponse({"services": SERVICES})


def _summary(text):
    if len(text) <= SUMMARY_LIMIT:
        return text
    return text[:SUMMARY_LIMIT - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _card(program, indicator, summary, detail, links=()):
    return {
        "uuid": str(uuid.uuid4()),
        "summary": _summary(summary),
        "detail": detail,
        "indicator": indicator,
        "source": {"label": program.name, "topic": {"system": "urn:rems:program", "code": program.slug,
                                                    "display": program.name}},
        **({"links": list(links)} if links else {}),
    }


def _link(request, label, url):
    return {"label": label, "url": request.build_absolute_uri(url), "type": "absolute"}


def _not_checked(request, program, why, what):
    return _card(program, "warning", f"{program.name} requirements not checked: {why}",
                 f"The REMS requirements of this order could not be checked: {what} Check them in the REMS portal "
                 "before the prescription is authorized.", [_link(request, "Open the REMS portal", reverse("portal:home"))])


def _requirement_cards(request, program, patient, now):
    decision, decision_facts = requirements_status(patient=patient, now=now)
    params = decision_facts.rule_set.parameters
    page = _link(request, "Open the patient in the REMS portal", reverse("portal:patient", kwargs={"pk": patient.pk}))
    failed = [c for c in decision.checks if not c.passed]
    if not failed:
        return [_card(program, "info", f"{program.name}: every requirement is met for the next prescription",
                      f"Checked under rule set {decision.rule_set}. Request the prescription authorization in the "
                      "REMS portal and write its number on the prescription.", [page])], decision
    cards = []
    for check in failed:
        make = FIXES.get(check.code)
        # what to do, in the numbers of the rule set decided under (without one, the fix that needs none)
        todo = (make(params, patient.risk_category) if make and (params or check.code == "RULE_SET_IN_FORCE")
                else check.message)
        critical = check.code.startswith("PREGNANCY_TEST_") or check.code in CRITICAL
        cards.append(_card(program, "critical" if critical else "warning", todo,
                           f"**{check.code}**: {check.message}\n\nRule set {decision.rule_set}.", [page]))
    return cards, decision


def _prefetched(model, data):
    """A prefetched resource parsed as `model`, or None when it is missing or not that resource."""
    try:
        return resource(model, data, "prefetch")
    except Unreadable:
        return None


def _orders(data, hook):
    """The MedicationRequests a `hook` request is about (order-sign: the draft orders; order-select: those of them
    selected), or Unreadable."""
    context = data.get("context")
    if data.get("hook") != hook or not isinstance(context, dict):
        raise Unreadable(f"An {hook} request: {{\"hook\": \"{hook}\", \"context\": {{...}}}}.")
    if not isinstance(data.get("hookInstance"), str):
        raise Unreadable("hookInstance: the identifier of this hook call (a UUID).")
    # The Bundle is read leniently (EHRs leave out its `type`), each MedicationRequest in it strictly.
    bundle = context.get("draftOrders")
    entries = bundle.get("entry", []) if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle" else None
    if not isinstance(entries, list):
        raise Unreadable("context.draftOrders: a FHIR R4 Bundle of the orders being written.")
    orders = [
        resource(MedicationRequest, entry["resource"], "context.draftOrders: a MedicationRequest")
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
        and entry["resource"].get("resourceType") == "MedicationRequest"
    ]
    if hook == "order-select":
        selections = context.get("selections")
        if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
            raise Unreadable("context.selections: the references of the orders selected, e.g. MedicationRequest/1.")
        orders = [o for o in orders if f"MedicationRequest/{o.id}" in selections]
    return orders


@csrf_exempt
def order_sign(request):
    return _hook(request, "order-sign")


@csrf_exempt
def order_select(request):
    return _hook(request, "order-select")


def _hook(request, hook):
    now = timezone.now()
    if request.method != "POST":
        return _error(405, f"POST an {hook} request.", {"Allow": "POST"})
    try:
        client = cds_client_authenticated(request, now)
    except TokenRefused:
        # As CDS Hooks advises: no more than the status; the reason goes to the compliance log
        # (`security.auth_failed`, at most once a minute).
        return _error(401, "Unauthorized.", {"WWW-Authenticate": "Bearer"})
    try:
        data = json_object(request)
        orders = _orders(data, hook)
    except Unreadable as exc:
        return _error(400, str(exc))
    programs = {}
    for order in orders:
        programs.update(medication_programs(medication_codings(order)))
    if not programs:
        return JsonResponse({"cards": []})  # no drug of a REMS this service administers
    prefetch = data.get("prefetch") if isinstance(data.get("prefetch"), dict) else {}
    practitioner = _prefetched(Practitioner, prefetch.get("practitioner"))
    fhir_patient = _prefetched(FhirPatient, prefetch.get("patient"))
    npis = [i.value for i in (practitioner.identifier or []) if i.system == NPI] if practitioner else []
    prescriber = Prescriber.objects.filter(npi__in=npis).first() if npis else None
    cards = []
    for program in sorted(programs, key=lambda p: p.slug):
        patient, outcome, failed = None, "not_checked", []
        if prescriber is None:
            cards.append(_not_checked(request, program, "the prescriber was not identified",
                                      "send the ordering practitioner (prefetch `practitioner`) with the NPI "
                                      "under which the prescriber is certified."))
        elif fhir_patient is None:
            cards.append(_not_checked(request, program, "the patient was not sent",
                                      "send the patient (prefetch `patient`)."))
        else:
            identifiers, family, given, birth_date = patient_identity(fhir_patient)
            found = list(patients_identified(
                Patient.objects.filter(prescriber=prescriber, program=program).select_related("program"),
                identifiers, family=family, given=given, birth_date=birth_date, by_name=True)[:2])
            if len(found) != 1:
                outcome = "not_enrolled"
                cards.append(_card(
                    program, "warning", f"Not enrolled in {program.name} with this prescriber: enroll before "
                                        "prescribing",
                    f"No enrollment of this patient with this prescriber was found in {program.name} (by the "
                    "identifiers linked to it, or by name and birth date). Enroll the patient, or link the EHR's "
                    "identifier to the enrollment, then sign again.",
                    [_link(request, "Enroll in the REMS portal", reverse("portal:patient-enroll"))]))
            else:
                patient = found[0]
                program_cards, decision = _requirement_cards(request, program, patient, now)
                cards += program_cards
                failed = decision.failed_codes
                outcome = "met" if not failed else "unmet"
        ehr_query_log(actor=None, action=Action.EHR_CDS_HOOK, outcome=outcome, now=now, patient=patient,
                      program=program, detail={"issuer": client.issuer, "hook": hook,
                                               "hook_instance": data["hookInstance"][:64], "failed": failed})
    return JsonResponse({"cards": cards})
