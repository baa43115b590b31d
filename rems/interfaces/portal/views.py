"""The portal's pages: one view per page or form, each calling the same service as the API's endpoint for the
same operation, on the same scoped querysets. A form posts, the service decides, and the post always answers
with a redirect (post/redirect/get): to what changed, to a denied decision's own address, or back to the form,
which shows what was typed and the refusal next to its field (`kept`). So every page a user lands on can be
reloaded, bookmarked and shared, and a reload never posts twice."""

import re
from zoneinfo import available_timezones

from functools import wraps

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import Role
from accounts.throttling import dispense_rate_exceeded
from dispensing import dispenses, prescriptions
from dispensing.models import DispenseStatus, Prescription, PrescriptionStatus
from dispensing.outlooks import patient_outlooks
from rems.compliance_log.actions import Action
from rems.compliance_log.models import ComplianceLogEntry
from rems.compliance_log.queries import EXPORT_KINDS, entries_filter, export_stream, report_build
from rems.core.errors import ActionRefused
from rems.core.wording import plural
from rems.program import patients, records
from rems.program.models import AttestationKind, EnrollmentTransfer
from rems.program.selectors import category_label, party_is_barred, rule_set_in_force, rule_set_parameters

from ..fixes import PHARMACY, PRESCRIBER, explained
from ..refusals import refusal_log
from ..scoping import (
    PHARMACY_STAFF,
    PRESCRIBER_OFFICE,
    READERS,
    audit_events_for,
    audit_events_for_prescription,
    dispense_authorizations_for,
    get_in_scope,
    patients_for,
    prescriptions_for,
)
from . import charts, forms
from .access import page
from .kept import form_keep, form_take, refusal_place

PRESCRIBER_ONLY = {Role.PRESCRIBER}
PAGE_SIZE = 50
_SEQ = re.compile(r"[0-9]{1,18}")
_ZONES = available_timezones()


# --- Signing in -----------------------------------------------------------------------------------------
class LoginView(auth_views.LoginView):
    """The same password check and lockout as the admin site (accounts.backends). The browser's time zone, sent
    by the page's script, is kept for the session so that times are typed and shown as the user's clock reads."""

    template_name = "portal/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        zone = self.request.POST.get("time_zone", "")
        self.request.session["time_zone"] = zone if zone in _ZONES else "UTC"
        return response


class LogoutView(auth_views.LogoutView):
    next_page = "portal:login"


@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico on every page they have not been told of one (the admin site, the API)."""
    return redirect(static("portal/favicon.ico"), permanent=True)


@require_GET
def home(request):
    if not request.user.is_authenticated:
        return redirect("portal:login")
    role = request.user.role
    if role in PRESCRIBER_OFFICE:
        return redirect("portal:patients")
    if role in PHARMACY_STAFF:
        return redirect("portal:counter")
    return redirect("portal:audit")


def _now():
    return timezone.now()


def posted_to(page_name, **kwargs_from):
    """A route that takes a form's post. Opened with GET (a reload, a bookmark, a shared link), it sends to the
    page the form is on, instead of a bare 405."""

    def wrap(view):
        @wraps(view)
        def route(request, *args, **kwargs):
            if request.method == "GET":
                return redirect(page_name, **kwargs)
            if request.method != "POST":
                return HttpResponseNotAllowed(["GET", "POST"])
            return view(request, *args, **kwargs)

        return route

    return wrap


def _bound(request, key, form_class, **form_kwargs):
    """The form as last posted and refused (kept for this one page), with its errors next to its fields; or
    None when nothing was kept."""
    data, refusal = form_take(request, key)
    if data is None:
        return None
    form = form_class(data, **form_kwargs)
    form.is_valid()
    refusal_place(form, refusal)
    return form


# --- Prescriber's office --------------------------------------------------------------------------------
@page(roles=PRESCRIBER_OFFICE)
@require_GET
def patient_list(request):
    patients = patients_for(request.user).select_related("program")
    search = forms.PatientSearchForm(request.GET)
    if not search.is_valid():
        return render(request, "portal/patient_list.html", {"rows": [], "search": search, "query": ""}, status=400)
    query = search.cleaned_data["q"].strip()
    if query:
        patients = patients.filter(Q(last_name__icontains=query) | Q(first_name__icontains=query))
    paginator = Paginator(patients.order_by("last_name", "first_name", "pk"), PAGE_SIZE)
    page_obj = paginator.get_page(request.GET.get("page"))
    now = _now()
    outlooks = patient_outlooks(patients=list(page_obj.object_list), now=now)
    params = {}
    for p in page_obj.object_list:
        if p.program_id not in params:
            params[p.program_id] = rule_set_in_force(program=p.program, now=now).parameters
    rows = [{"patient": p, "items": outlooks[p.pk], "risk_label": category_label(params[p.program_id], p.risk_category)}
            for p in page_obj.object_list]
    return render(request, "portal/patient_list.html",
                  {"rows": rows, "page_obj": page_obj, "query": query, "search": search})


@page(roles=PRESCRIBER_OFFICE)
@require_http_methods(["GET", "POST"])
def patient_enroll(request):
    if request.user.role != Role.PRESCRIBER:
        refusal_log(request, "role")
        return render(request, "portal/refused.html",
                      {"message": "Only the prescriber enrolls a patient."}, status=403)
    if request.method == "GET":
        form = _bound(request, "enroll", forms.EnrollForm, now=_now()) or forms.EnrollForm(now=_now())
        return render(request, "portal/patient_enroll.html", {"form": form})
    form = forms.EnrollForm(request.POST, now=_now())
    if not form.is_valid():
        form_keep(request, "enroll")
        return redirect("portal:patient-enroll")
    values = dict(form.cleaned_data)
    try:
        patient = patients.patient_enroll(actor=request.user, prescriber=request.user.prescriber,
                                          program=values.pop("program"), now=_now(), **values)
    except patients.AlreadyEnrolled as exc:
        messages.info(request, "This patient is already enrolled by your office: here is the record.")
        return redirect("portal:patient", pk=exc.patient_id)
    except ActionRefused as exc:
        form_keep(request, "enroll", refusal=exc)
        return redirect("portal:patient-enroll")
    if isinstance(patient, EnrollmentTransfer):
        messages.info(request, "This enrollment needs the program administrator's review before it takes effect; "
                               "the administrator will contact your office.")
        return redirect("portal:patients")
    messages.success(request, f"{patient.first_name} {patient.last_name} is enrolled.")
    return redirect("portal:patient", pk=patient.pk)


_FORMS = {  # form name -> (prefix, the anchor of its panel)
    "test_form": ("test", "test-title"), "attestation_form": ("attestation", "attestation-title"),
    "counseling_form": ("counseling", "counseling-title"), "survey_form": ("survey", "survey-title"),
    "authorize_form": ("rx", "rx-title"),
}


def _patient_context(request, patient, decision=None):
    now = _now()
    rule_set = rule_set_in_force(program=patient.program, now=now)
    params = rule_set.parameters
    category = params.category(patient.risk_category) if params else None
    counseling = params.counseling.get(patient.risk_category) if category else None
    kept = {}
    for name, form_class, kwargs in (
            ("test_form", forms.PregnancyTestForm, {"params": params}),
            ("attestation_form", forms.ContraceptionForm, {"params": params}),
            ("counseling_form", forms.forms.Form, {}),
            ("survey_form", forms.SurveyForm, {"params": params}),
            ("authorize_form", forms.AuthorizeForm, {"program": patient.program, "params": params})):
        bound = _bound(request, f"patient:{patient.pk}:{name}", form_class, prefix=_FORMS[name][0], **kwargs)
        kept[name] = bound or form_class(prefix=_FORMS[name][0], **kwargs)
    return {
        "patient": patient,
        "params": params,
        "risk_label": category_label(params, patient.risk_category),
        "reproductive": category is not None and category.can_get_pregnant,
        "counseling": counseling.kind if counseling else "",
        "survey_label": params.survey_label if params else "patient survey",
        "has_survey": category is not None and patient.risk_category in params.surveys,
        "methods_help": _methods_help(params),
        "items": patient_outlooks(patients=[patient], now=now)[patient.pk],
        "tests": patient.pregnancy_tests.order_by("-collected_at")[:10],
        "attestations": _with_method_labels(patient.attestations.order_by("-attested_at")[:5], params),
        "surveys": patient.surveys.order_by("-completed_at")[:5],
        "prescriptions": prescriptions_for(request.user).filter(patient=patient).order_by("-issued_at")[:10],
        "may_authorize": request.user.role == Role.PRESCRIBER,
        "decision": decision,
        **kept,
    }


def _with_method_labels(attestations, params):
    """The attestations, each with its methods as the program names them."""
    known = params.contraception_methods if params else {}
    kinds = {"contraception": "Contraception", "male_counseling": "Condom counseling", "counseling": "Counseling"}
    attestations = list(attestations)
    for attestation in attestations:
        attestation.kind_label = kinds.get(attestation.kind, attestation.kind)
        attestation.method_labels = [known.get(method, method) for method in attestation.methods]
    return attestations


def _methods_help(params):
    if params is None:
        return ""
    def lower(label):  # "Intrauterine device (IUD)" -> "intrauterine device (IUD)"; "IUD" stays
        return label if label[:2].isupper() else label[:1].lower() + label[1:]

    primary = ", ".join(lower(label) for label in params.contraception_primary_methods.values())
    secondary = ", ".join(lower(label) for label in params.contraception_secondary_methods.values())
    return (f"One primary method ({primary}) and one more ({secondary}), used at the same time; from "
            f"{plural(params.contraception_min_days_before_first_prescription, 'day')} before the first prescription.")


@page(roles=PRESCRIBER_OFFICE | READERS)
@require_GET
def patient_detail(request, pk):
    patient = get_in_scope(patients_for(request.user), pk=pk)
    return render(request, "portal/patient_detail.html", _patient_context(request, patient))


@page(roles=PRESCRIBER_OFFICE | READERS, decisions=("GET",))
@require_GET
def patient_decision(request, pk, decision):
    """A denied prescription decision, at an address of its own: the patient's page with the failed checks, each
    with what to do, read back from the compliance-log entry that recorded it. Its owner can reload and share it.
    A suspended or revoked prescriber, whose requests are still decided, sees the decision and nothing else."""
    patient = get_in_scope(patients_for(request.user), pk=pk)
    entry = ComplianceLogEntry.objects.filter(
        id=decision, patient_id=patient.pk, action=Action.PRESCRIPTION_AUTHORIZE).first()
    if entry is None:
        raise Http404
    if entry.prescription_id and entry.outcome == "approved":
        return redirect("portal:prescription", pk=entry.prescription_id)
    failed, passed = explained(entry.checks, PRESCRIBER, rule_set_parameters(entry.rule_set), patient.risk_category)
    for check in failed:
        if request.user.role in PRESCRIBER_OFFICE and check["code"] not in _NOTHING_TO_RECORD:
            check["form"] = _FORM_FOR_CHECK.get(check["code"].split("_")[0])
    shown = {"failed": failed, "passed": passed, "rule_set": entry.rule_set, "decision_id": entry.id,
             "decided_at": entry.occurred_at}
    if party_is_barred(request.user):
        return render(request, "portal/decision_page.html", {"decision": shown})
    return render(request, "portal/patient_detail.html", _patient_context(request, patient, decision=shown))


# Where on the patient's page a failed check is put right: (the panel's anchor, the link's words).
_FORM_FOR_CHECK = {
    "PREGNANCY": ("test-title", "Record a pregnancy test"),
    "CONTRACEPTION": ("attestation-title", "Record a contraception attestation"),
    "MALE": ("counseling-title", "Record the counseling"),
    "COUNSELING": ("counseling-title", "Record the counseling"),
    "SURVEY": ("survey-title", "Record the survey"),
    "DAYS": ("rx-title", "Change the request"),
    "QUANTITY": ("rx-title", "Change the request"),
    "PRODUCT": ("rx-title", "Change the request"),
}
_NOTHING_TO_RECORD = {"PREGNANCY_TEST_NEGATIVE", "PREGNANCY_TEST_LOCKOUT"}


def _patient_form_post(request, patient, *, form_name, form, record, success):
    """A record about a patient: validate, call the service, redirect. A refused form is kept for the patient's
    page, which shows it again with the reasons next to the fields. `record` returns a response to send (a
    redirect), or anything else for the patient's page with `success`."""
    key = f"patient:{patient.pk}:{form_name}"
    anchor = "#" + _FORMS[form_name][1]
    back = reverse("portal:patient", kwargs={"pk": patient.pk}) + anchor
    if not form.is_valid():
        form_keep(request, key)
        return redirect(back)
    try:
        result = record(patient, form)
    except ActionRefused as exc:
        form_keep(request, key, refusal=exc)
        return redirect(back)
    if isinstance(result, HttpResponseBase):
        return result
    messages.success(request, success)
    return redirect("portal:patient", pk=patient.pk)


def _patient(request, pk):
    return get_in_scope(patients_for(request.user), pk=pk)


def _params(patient):
    return rule_set_in_force(program=patient.program, now=_now()).parameters


@page(roles=PRESCRIBER_OFFICE)
@posted_to("portal:patient")
def pregnancy_test_record(request, pk):
    def record(patient, form):
        return records.pregnancy_test_record(actor=request.user, patient=patient, now=_now(), **form.cleaned_data)

    patient = _patient(request, pk)
    form = forms.PregnancyTestForm(request.POST, prefix="test", params=_params(patient))
    return _patient_form_post(request, patient, form_name="test_form", form=form, record=record,
                              success="The pregnancy test is recorded.")


@page(roles=PRESCRIBER_OFFICE)
@posted_to("portal:patient")
def attestation_record(request, pk):
    patient = _patient(request, pk)
    params = _params(patient)
    category = params.category(patient.risk_category) if params else None
    # Contraception for a patient who can get pregnant, unless the counseling form says it is counseling (a
    # patient of iPLEDGE who can get pregnant needs both); otherwise the counseling the category needs.
    counseling = params.counseling.get(patient.risk_category) if category else None
    posted_counseling = counseling is not None and request.POST.get("counseling-kind") == counseling.kind
    contraception = category is not None and category.can_get_pregnant and not posted_counseling

    def record(patient, form):
        if contraception or counseling is None:
            return records.attestation_record(actor=request.user, patient=patient,
                                               kind=AttestationKind.CONTRACEPTION, now=_now(), **form.cleaned_data)
        return records.attestation_record(actor=request.user, patient=patient, kind=counseling.kind, now=_now())

    if contraception or counseling is None:
        form_name, form = "attestation_form", forms.ContraceptionForm(request.POST, prefix="attestation",
                                                                      params=params)
    else:
        form_name, form = "counseling_form", forms.forms.Form(request.POST, prefix="counseling")
    return _patient_form_post(request, patient, form_name=form_name, form=form, record=record,
                              success="The attestation is recorded.")


@page(roles=PRESCRIBER_OFFICE)
@posted_to("portal:patient")
def survey_record(request, pk):
    def record(patient, form):
        return records.survey_record(actor=request.user, patient=patient, now=_now(), **form.cleaned_data)

    patient = _patient(request, pk)
    form = forms.SurveyForm(request.POST, prefix="survey", params=_params(patient))
    return _patient_form_post(request, patient, form_name="survey_form", form=form, record=record,
                              success="The survey is recorded.")


@page(roles=PRESCRIBER_ONLY, decisions=("POST",))
@posted_to("portal:patient")
def prescription_authorize(request, pk):
    def record(patient, form):
        decision, entry, prescription = prescriptions.prescription_authorize(
            actor=request.user, patient=patient, now=_now(), **form.cleaned_data)
        if prescription is None:  # denied: the decision's own page, with the form as it was sent
            form_keep(request, f"patient:{patient.pk}:authorize_form")
            return redirect("portal:patient-decision", pk=patient.pk, decision=entry.id)
        messages.success(request, "Authorized. Write this number on the prescription.")
        return redirect("portal:prescription", pk=prescription.pk)

    patient = _patient(request, pk)
    form = forms.AuthorizeForm(request.POST, prefix="rx", program=patient.program, params=_params(patient))
    return _patient_form_post(request, patient, form_name="authorize_form", form=form, record=record, success="")


@page(roles=PRESCRIBER_OFFICE | READERS)
@require_GET
def prescription_detail(request, pk):
    prescription = get_in_scope(prescriptions_for(request.user).select_related("patient"), pk=pk)
    events = audit_events_for_prescription(request.user, prescription)
    may_cancel = request.user.role == Role.PRESCRIBER and prescription.status == PrescriptionStatus.ISSUED
    return render(request, "portal/prescription_detail.html", {
        "prescription": prescription,
        "risk_label": category_label(rule_set_parameters(prescription.rule_set), prescription.risk_category),
        "events": events,
        "reader": request.user.role in READERS,
        "may_cancel": may_cancel,
        "cancel_form": (_bound(request, f"cancel:{prescription.pk}", forms.ReasonForm, prefix="cancel")
                        or forms.ReasonForm(prefix="cancel")) if may_cancel else None,
    })


@page(roles=PRESCRIBER_ONLY)
@posted_to("portal:prescription")
def prescription_cancel(request, pk):
    prescription = get_in_scope(prescriptions_for(request.user), pk=pk)
    form = forms.ReasonForm(request.POST, prefix="cancel")
    key = f"cancel:{prescription.pk}"
    if not form.is_valid():
        form_keep(request, key)
    else:
        try:
            prescriptions.prescription_cancel(actor=request.user, prescription=prescription,
                                           reason=form.cleaned_data["reason"], now=_now())
            messages.success(request, "The authorization is cancelled.")
        except ActionRefused as exc:
            form_keep(request, key, refusal=exc)
    return redirect("portal:prescription", pk=pk)


# --- Pharmacy counter -----------------------------------------------------------------------------------
def _counter_page(request, decision=None):
    form = _bound(request, "counter", forms.CounterForm) or forms.CounterForm()
    context = {"form": form, "decision": decision}
    if decision is None:
        context["recent"] = _recent_dispenses(request)[:5]
    return render(request, "portal/counter.html", context)


@page(roles=PHARMACY_STAFF, decisions=("POST",))
@require_http_methods(["GET", "POST"])
def counter(request):
    if request.method == "GET":
        return _counter_page(request)
    if dispense_rate_exceeded(request.user, f"user:{request.user.pk}", _now())[0]:
        form_keep(request, "counter")
        messages.error(request, "Too many requests from this pharmacy in the last minute; wait a minute and try "
                                "again.")
        return redirect("portal:counter")
    form = forms.CounterForm(request.POST)
    if not form.is_valid():
        form_keep(request, "counter")
        return redirect("portal:counter")
    values = form.cleaned_data
    decision, entry, rda = dispenses.dispense_authorization_request(
        actor=request.user, pharmacy=request.user.pharmacy, authorization_number=values["authorization_number"],
        date_of_birth=values["patient_date_of_birth"], ndc=values["ndc"], quantity=values["quantity"],
        days_supply=values["days_supply"], now=_now(),
    )
    if rda is not None:
        messages.success(request, "Dispense authorized. Counsel the patient, then confirm the dispense.")
        return redirect("portal:rda", rda_number=rda.rda_number)
    form_keep(request, "counter")
    return redirect("portal:counter-decision", decision=entry.id)


@page(roles=PHARMACY_STAFF, decisions=("GET",))
@require_GET
def counter_decision(request, decision):
    """A denied dispense request, at an address of its own: the reasons the pharmacy may see, read back from the
    compliance-log entry, for the pharmacy that asked only."""
    entry = ComplianceLogEntry.objects.filter(
        id=decision, action=Action.DISPENSE_AUTHORIZATION_REQUEST, actor_pharmacy_id=request.user.pharmacy_id,
    ).first()
    if entry is None or request.user.pharmacy_id is None:
        raise Http404
    if entry.outcome == "approved":
        rda = dispense_authorizations_for(request.user).filter(
            prescription_id=entry.prescription_id).order_by("-approved_at").first()
        if rda is not None:
            return redirect("portal:rda", rda_number=rda.rda_number)
    failed, passed = explained(entry.checks, PHARMACY, rule_set_parameters(entry.rule_set))
    if party_is_barred(request.user):
        return render(request, "portal/decision_page.html", {"decision": {
            "failed": failed, "passed": passed, "rule_set": entry.rule_set, "decision_id": entry.id}})
    return _counter_page(request, decision={"failed": failed, "passed": passed, "rule_set": entry.rule_set,
                                            "decision_id": entry.id, "decided_at": entry.occurred_at})


@page(roles=PHARMACY_STAFF)
@require_GET
def counter_product(request):
    """The product of an open authorization, so that the counter's form chooses it once the number is typed: the
    product only, which the prescription itself shows, for a well-formed number of an authorization still open,
    within the same per-user request limit as the decisions. Anything else answers the same empty product."""
    found = {"ndc": ""}
    if dispense_rate_exceeded(request.user, f"user:{request.user.pk}", _now())[0]:
        return JsonResponse(found, status=429)
    try:
        number = forms.CounterForm.base_fields["authorization_number"].clean(request.GET.get("number", ""))
    except forms.forms.ValidationError:
        return JsonResponse(found)
    ndc = (Prescription.objects.filter(authorization_number=number, status=PrescriptionStatus.ISSUED,
                                       expires_at__gt=_now())
           .values_list("product__ndc", flat=True).first())
    return JsonResponse({"ndc": ndc or ""})


def _recent_dispenses(request):
    return dispense_authorizations_for(request.user).select_related(
        "prescription__patient", "product").order_by("-approved_at")


def _rda_in_scope(request, rda_number):
    try:
        number = forms.RdaLookupForm.base_fields["rda_number"].clean(rda_number)
    except forms.forms.ValidationError:
        raise Http404 from None
    return get_in_scope(_recent_dispenses(request), rda_number=number)


@page(roles=PHARMACY_STAFF | READERS)
@require_GET
def rda_detail(request, rda_number):
    rda = _rda_in_scope(request, rda_number)
    staff = request.user.role in PHARMACY_STAFF
    may_dispense = staff and rda.status == DispenseStatus.APPROVED and rda.expires_at > _now()
    may_reverse = staff and rda.status in (DispenseStatus.APPROVED, DispenseStatus.DISPENSED)
    key = f"rda:{rda.rda_number}"
    return render(request, "portal/rda_detail.html", {
        "rda": rda,
        "patient": rda.prescription.patient,
        "may_dispense": may_dispense,
        "may_reverse": may_reverse,
        "dispense_form": (_bound(request, key + ":dispense", forms.DispenseForm, prefix="dispense")
                          or forms.DispenseForm(prefix="dispense")) if may_dispense else None,
        "reverse_form": (_bound(request, key + ":reverse", forms.ReasonForm, prefix="reverse")
                         or forms.ReasonForm(prefix="reverse")) if may_reverse else None,
    })


class _Unticked(ActionRefused):
    """The checklist is not complete: said at the top of the dispense form."""


@page(roles=PHARMACY_STAFF)
@posted_to("portal:rda")
def rda_dispense(request, rda_number):
    rda = _rda_in_scope(request, rda_number)
    form = forms.DispenseForm(request.POST, prefix="dispense")
    key = f"rda:{rda.rda_number}:dispense"
    if not form.is_valid():
        form_keep(request, key, refusal=_Unticked(
            "Tick every counseling point and the Medication Guide before confirming the dispense."))
        return redirect("portal:rda", rda_number=rda.rda_number)
    try:
        dispenses.dispense_confirm(actor=request.user, rda=rda, counseling_confirmed=form.counseling_confirmed(),
                                    medication_guide_provided=form.cleaned_data["medication_guide_provided"],
                                    now=_now())
    except ActionRefused as exc:
        form_keep(request, key, refusal=exc)
        return redirect("portal:rda", rda_number=rda.rda_number)
    messages.success(request, "The dispense is confirmed.")
    return redirect("portal:rda", rda_number=rda.rda_number)


@page(roles=PHARMACY_STAFF)
@posted_to("portal:rda")
def rda_reverse(request, rda_number):
    rda = _rda_in_scope(request, rda_number)
    form = forms.ReasonForm(request.POST, prefix="reverse")
    key = f"rda:{rda.rda_number}:reverse"
    if not form.is_valid():
        form_keep(request, key)
        return redirect("portal:rda", rda_number=rda.rda_number)
    try:
        dispenses.dispense_reverse(actor=request.user, rda=rda, reason=form.cleaned_data["reason"], now=_now())
    except ActionRefused as exc:
        form_keep(request, key, refusal=exc)
        return redirect("portal:rda", rda_number=rda.rda_number)
    messages.success(request, "The dispense authorization is reversed.")
    return redirect("portal:rda", rda_number=rda.rda_number)


@page(roles=PHARMACY_STAFF)
@require_GET
def dispense_list(request):
    paginator = Paginator(_recent_dispenses(request), PAGE_SIZE)
    page_obj = paginator.get_page(request.GET.get("page"))
    return render(request, "portal/dispense_list.html", {"page_obj": page_obj})


# --- Auditors -------------------------------------------------------------------------------------------
def _audit_entries(request, form):
    """The entries the search asks for: scoped to the reader first, then the log's own filters as the API applies
    them, then what the portal adds (parties found by name or number, decisions apart from security events)."""
    queryset = audit_events_for(request.user)
    if not form.is_bound:
        return form.kind_filter(queryset)
    return form.parties_filter(form.kind_filter(entries_filter(queryset, **form.filters())))


@page(roles=READERS)
@require_GET
def audit_search(request):
    form = forms.AuditSearchForm(request.GET or None, user=request.user)
    if form.is_bound and not form.is_valid():
        return render(request, "portal/audit.html", {"form": form}, status=400)
    queryset = _audit_entries(request, form)
    before = request.GET.get("before", "")
    if before:
        if not _SEQ.fullmatch(before):
            form.add_error(None, "The page link is damaged; search again.")
            return render(request, "portal/audit.html", {"form": form}, status=400)
        queryset = queryset.filter(seq__lt=int(before))
    next_before = None
    entries = list(queryset.order_by("-seq")[:PAGE_SIZE + 1])
    if len(entries) > PAGE_SIZE:
        entries = entries[:PAGE_SIZE]
        next_before = entries[-1].seq
    names = forms.patient_names(request.user, {e.patient_id for e in entries if e.patient_id})
    rows = [{"entry": e, "patient": names.get(e.patient_id, ""),
             "failed": [c["code"] for c in (e.checks or []) if not c.get("passed")]} for e in entries]
    query = {k: v for k, v in request.GET.items() if k != "before"}
    more = urlencode({**query, "before": next_before}) if next_before else ""
    return render(request, "portal/audit.html", {
        "form": form, "rows": rows, "export_query": urlencode(query), "more": more,
    })


@page(roles=READERS)
@require_GET
def audit_export(request, kind):
    """Exactly the entries searched, oldest first, streamed by the log's own export (CSV or JSON Lines)."""
    if kind not in EXPORT_KINDS:
        raise Http404
    form = forms.AuditSearchForm(request.GET or None, user=request.user)
    if form.is_bound and not form.is_valid():
        return render(request, "portal/audit.html", {"form": form}, status=400)
    content_type = "text/csv; charset=utf-8" if kind == "csv" else "application/x-ndjson"
    response = StreamingHttpResponse(export_stream(_audit_entries(request, form), kind), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="compliance-log.{kind}"'
    return response


@page(roles=READERS)
@require_GET
def report(request):
    form = forms.ReportForm(request.GET or None, user=request.user)
    if form.is_bound and not form.is_valid():
        return render(request, "portal/reports.html", {"form": form}, status=400)
    args = form.report_args() if form.is_bound else {
        "period": "month", "since": None, "until": None, "program": None, "pharmacy": None}
    data = report_build(**args)
    return render(request, "portal/reports.html", {
        "form": form,
        "report": data,
        "charts": [
            charts.decisions_by_outcome(data["decisions"], args["period"], since=args["since"], until=args["until"]),
            charts.failed_checks(data["failed_checks"], args["period"], since=args["since"], until=args["until"]),
            charts.time_to_dispense(data["time_to_dispense"], args["period"], since=args["since"],
                                    until=args["until"]),
        ],
        "event_totals": [
            (label, sum(row["count"] for row in data[name])) for name, label in (
                ("authorizations_expired_undispensed", "Prescription authorizations that lapsed undispensed"),
                ("rdas_reversed", "Dispense authorizations reversed"),
                ("rdas_expired", "Dispense authorizations that lapsed"),
                ("pregnancy_reports", "Pregnancy reports opened"),
            )
        ],
        "api_query": urlencode({k: (v.isoformat() if hasattr(v, "isoformat") else v)
                                for k, v in args.items() if v}),
    })
