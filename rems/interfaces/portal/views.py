"""The portal's pages: one view per page or form, each calling the same service as the API's endpoint for the
same operation, on the same scoped querysets. A form posts, the service decides, and the page redirects to
what changed (so that a reload never posts twice) or shows the refusal next to the form."""

import re
from zoneinfo import available_timezones

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role
from accounts.throttling import dispense_rate_exceeded
from dispensing import dispenses, prescriptions
from dispensing.models import DispenseStatus
from dispensing.outlooks import patient_outlooks
from rems.compliance_log.queries import entries_filter, report_build
from rems.core import gates
from rems.core.errors import ActionRefused
from rems.core.identifiers import authorization_number_display
from rems.core.wording import plural
from rems.program import patients, records
from rems.program.models import AttestationKind
from rems.program.selectors import category_label, rule_set_in_force, rule_set_parameters

from ..fixes import PHARMACY, PRESCRIBER, explained
from ..refusals import refusal_log, refusal_status
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
def home(request):
    if not request.user.is_authenticated:
        return redirect("portal:login")
    role = request.user.role
    if role in PRESCRIBER_OFFICE:
        return redirect("portal:patients")
    if role in PHARMACY_STAFF:
        return redirect("portal:counter")
    return redirect("portal:audit")


def _refused(request, template, context, exc):
    """A service refused the action: the form is shown again with the reason, and nothing was written."""
    context["refusal"] = exc.message
    return render(request, template, context, status=refusal_status(exc))


def _now():
    return timezone.now()


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
    outlooks = patient_outlooks(patients=list(page_obj.object_list), now=_now())
    rows = [{"patient": p, "items": outlooks[p.pk]} for p in page_obj.object_list]
    return render(request, "portal/patient_list.html",
                  {"rows": rows, "page_obj": page_obj, "query": query, "search": search})


@page(roles=PRESCRIBER_OFFICE)
@require_http_methods(["GET", "POST"])
def patient_enroll(request):
    if request.user.role != Role.PRESCRIBER:
        refusal_log(request, "role")
        return render(request, "portal/refused.html",
                      {"message": "Only the prescriber enrolls a patient."}, status=403)
    form = forms.EnrollForm(request.POST or None, now=_now())
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "portal/patient_enroll.html", {"form": form}, status=400)
        values = dict(form.cleaned_data)
        try:
            patient = patients.patient_enroll(actor=request.user, prescriber=request.user.prescriber,
                                              program=values.pop("program"), now=_now(), **values)
        except ActionRefused as exc:
            return _refused(request, "portal/patient_enroll.html", {"form": form}, exc)
        messages.success(request, f"{patient.first_name} {patient.last_name} is enrolled.")
        return redirect("portal:patient", pk=patient.pk)
    return render(request, "portal/patient_enroll.html", {"form": form})


def _patient_context(request, patient, **forms_given):
    now = _now()
    rule_set = rule_set_in_force(program=patient.program, now=now)
    params = rule_set.parameters
    category = params.category(patient.risk_category) if params else None
    counseling = params.counseling.get(patient.risk_category) if category else None
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
        "test_form": forms_given.get("test_form") or forms.PregnancyTestForm(prefix="test", params=params),
        "attestation_form": forms_given.get("attestation_form") or forms.ContraceptionForm(prefix="attestation",
                                                                                           params=params),
        "survey_form": forms_given.get("survey_form") or forms.SurveyForm(prefix="survey", params=params),
        "authorize_form": forms_given.get("authorize_form") or forms.AuthorizeForm(
            prefix="rx", program=patient.program,
            initial={"days_supply": params.max_days_supply} if params else {}),
        "may_authorize": request.user.role == Role.PRESCRIBER,
        "decision": forms_given.get("decision"),
        "refusal": forms_given.get("refusal"),
        "refused_form": forms_given.get("refused_form"),
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


_PREFIXES = {"test_form": "test", "attestation_form": "attestation", "survey_form": "survey", "authorize_form": "rx"}


def _patient_form_post(request, patient, *, form_name, form_class, record, success, **form_kwargs):
    """A record about a patient: validate, call the service, redirect; or the patient page again with why.
    `record` returns a response to send (a redirect), a denied decision to show (a dict), or anything else for
    the patient page with `success`."""
    form = form_class(request.POST, prefix=_PREFIXES[form_name], **form_kwargs)
    if not form.is_valid():
        context = _patient_context(request, patient, **{form_name: form})
        context["refused_form"] = form_name
        return render(request, "portal/patient_detail.html", context, status=400)
    try:
        result = record(patient, form)
    except ActionRefused as exc:
        context = _patient_context(request, patient, **{form_name: form}, refusal=exc.message, refused_form=form_name)
        return render(request, "portal/patient_detail.html", context, status=refusal_status(exc))
    if isinstance(result, dict):  # a denied decision: shown with every failed check and what to do
        context = _patient_context(request, patient, **{form_name: form}, decision=result)
        return render(request, "portal/patient_detail.html", context, status=422)
    if isinstance(result, HttpResponseBase):
        return result
    messages.success(request, success)
    return redirect("portal:patient", pk=patient.pk)


def _patient(request, pk):
    return get_in_scope(patients_for(request.user), pk=pk)


@page(roles=PRESCRIBER_OFFICE)
@require_POST
def pregnancy_test_record(request, pk):
    def record(patient, form):
        return records.pregnancy_test_record(actor=request.user, patient=patient, now=_now(), **form.cleaned_data)

    patient = _patient(request, pk)
    return _patient_form_post(request, patient, form_name="test_form", form_class=forms.PregnancyTestForm,
                              record=record, success="The pregnancy test is recorded.",
                              params=rule_set_in_force(program=patient.program, now=_now()).parameters)


@page(roles=PRESCRIBER_OFFICE)
@require_POST
def attestation_record(request, pk):
    patient = _patient(request, pk)
    params = rule_set_in_force(program=patient.program, now=_now()).parameters
    category = params.category(patient.risk_category) if params else None
    # Contraception for a patient who can get pregnant, unless the counseling form says it is counseling (a
    # patient of iPLEDGE who can get pregnant needs both); otherwise the counseling the category needs.
    counseling = params.counseling.get(patient.risk_category) if category else None
    posted_counseling = counseling is not None and request.POST.get("attestation-kind") == counseling.kind
    contraception = category is not None and category.can_get_pregnant and not posted_counseling

    def record(patient, form):
        if contraception or counseling is None:
            return records.attestation_record(actor=request.user, patient=patient,
                                               kind=AttestationKind.CONTRACEPTION, now=_now(), **form.cleaned_data)
        return records.attestation_record(actor=request.user, patient=patient, kind=counseling.kind, now=_now())

    form_class = forms.ContraceptionForm if contraception or counseling is None else forms.forms.Form
    return _patient_form_post(request, patient, form_name="attestation_form", form_class=form_class, record=record,
                              success="The attestation is recorded.",
                              **({"params": params} if form_class is forms.ContraceptionForm else {}))


@page(roles=PRESCRIBER_OFFICE)
@require_POST
def survey_record(request, pk):
    def record(patient, form):
        return records.survey_record(actor=request.user, patient=patient, now=_now(), **form.cleaned_data)

    patient = _patient(request, pk)
    return _patient_form_post(request, patient, form_name="survey_form", form_class=forms.SurveyForm,
                              record=record, success="The survey is recorded.",
                              params=rule_set_in_force(program=patient.program, now=_now()).parameters)


@page(roles=PRESCRIBER_ONLY, decisions=("POST",))
@require_POST
def prescription_authorize(request, pk):
    def record(patient, form):
        decision, entry, prescription = prescriptions.prescription_authorize(
            actor=request.user, patient=patient, now=_now(), **form.cleaned_data)
        if prescription is None:
            failed, passed = explained(gates.checks_as_json(decision), PRESCRIBER,
                                       rule_set_parameters(decision.rule_set), patient.risk_category)
            return {"failed": failed, "passed": passed, "rule_set": decision.rule_set, "decision_id": entry.id}
        messages.success(request, "Authorized. Write this number on the prescription.")
        return redirect("portal:prescription", pk=prescription.pk)

    patient = _patient(request, pk)
    return _patient_form_post(request, patient, form_name="authorize_form", form_class=forms.AuthorizeForm,
                              record=record, success="", program=patient.program)


@page(roles=PRESCRIBER_OFFICE | READERS)
@require_GET
def prescription_detail(request, pk):
    prescription = get_in_scope(prescriptions_for(request.user).select_related("patient"), pk=pk)
    events = audit_events_for_prescription(request.user, prescription)
    return render(request, "portal/prescription_detail.html", {
        "prescription": prescription,
        "number": authorization_number_display(prescription.authorization_number),
        "risk_label": category_label(rule_set_parameters(prescription.rule_set), prescription.risk_category),
        "events": events,
        "reader": request.user.role in READERS,
        "may_cancel": request.user.role == Role.PRESCRIBER and prescription.status == "issued",
        "cancel_form": forms.ReasonForm(prefix="cancel"),
    })


@page(roles=PRESCRIBER_ONLY)
@require_POST
def prescription_cancel(request, pk):
    prescription = get_in_scope(prescriptions_for(request.user), pk=pk)
    form = forms.ReasonForm(request.POST, prefix="cancel")
    if form.is_valid():
        try:
            prescriptions.prescription_cancel(actor=request.user, prescription=prescription,
                                           reason=form.cleaned_data["reason"], now=_now())
            messages.success(request, "The authorization is cancelled.")
        except ActionRefused as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, "Give the reason for the cancellation.")
    return redirect("portal:prescription", pk=pk)


# --- Pharmacy counter -----------------------------------------------------------------------------------
@page(roles=PHARMACY_STAFF, decisions=("POST",))
@require_http_methods(["GET", "POST"])
def counter(request):
    form = forms.CounterForm(request.POST or None)
    context = {"form": form}
    if request.method == "GET":
        # Only on the page itself: a suspended pharmacy, whose requests are still decided, sees nothing else.
        context["recent"] = _recent_dispenses(request)[:5]
        return render(request, "portal/counter.html", context)
    if dispense_rate_exceeded(request.user, f"user:{request.user.pk}", _now())[0]:
        context["refusal"] = "Too many requests from this pharmacy in the last minute; wait a minute and try again."
        return render(request, "portal/counter.html", context, status=429)
    if not form.is_valid():
        return render(request, "portal/counter.html", context, status=400)
    values = form.cleaned_data
    decision, entry, rda = dispenses.dispense_authorization_request(
        actor=request.user, pharmacy=request.user.pharmacy, authorization_number=values["authorization_number"],
        date_of_birth=values["patient_date_of_birth"], ndc=values["ndc"], quantity=values["quantity"],
        days_supply=values["days_supply"], now=_now(),
    )
    if rda is not None:
        messages.success(request, "Dispense authorized. Counsel the patient, then confirm the dispense.")
        return redirect("portal:rda", rda_number=rda.rda_number)
    failed, passed = explained(gates.checks_as_json(decision), PHARMACY, rule_set_parameters(decision.rule_set))
    context["decision"] = {"failed": failed, "passed": passed, "rule_set": decision.rule_set, "decision_id": entry.id}
    return render(request, "portal/counter.html", context, status=422)


def _recent_dispenses(request):
    return dispense_authorizations_for(request.user).select_related("prescription", "product").order_by("-approved_at")


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
    return render(request, "portal/rda_detail.html", _rda_context(request, rda))


def _rda_context(request, rda, dispense_form=None, reverse_form=None):
    staff = request.user.role in PHARMACY_STAFF
    return {
        "rda": rda,
        "rda_display": authorization_number_display(rda.rda_number),
        "number_display": authorization_number_display(rda.prescription.authorization_number),
        "may_dispense": staff and rda.status == DispenseStatus.APPROVED and rda.expires_at > _now(),
        "may_reverse": staff and rda.status in (DispenseStatus.APPROVED, DispenseStatus.DISPENSED),
        "dispense_form": dispense_form or forms.DispenseForm(prefix="dispense"),
        "reverse_form": reverse_form or forms.ReasonForm(prefix="reverse"),
    }


@page(roles=PHARMACY_STAFF)
@require_POST
def rda_dispense(request, rda_number):
    rda = _rda_in_scope(request, rda_number)
    form = forms.DispenseForm(request.POST, prefix="dispense")
    if not form.is_valid():
        context = _rda_context(request, rda, dispense_form=form)
        context["refusal"] = "Tick every counseling point and the Medication Guide before confirming the dispense."
        return render(request, "portal/rda_detail.html", context, status=400)
    try:
        dispenses.dispense_confirm(actor=request.user, rda=rda, counseling_confirmed=form.counseling_confirmed(),
                                    medication_guide_provided=form.cleaned_data["medication_guide_provided"],
                                    now=_now())
    except ActionRefused as exc:
        return _refused(request, "portal/rda_detail.html", _rda_context(request, rda, dispense_form=form), exc)
    messages.success(request, "The dispense is confirmed.")
    return redirect("portal:rda", rda_number=rda.rda_number)


@page(roles=PHARMACY_STAFF)
@require_POST
def rda_reverse(request, rda_number):
    rda = _rda_in_scope(request, rda_number)
    form = forms.ReasonForm(request.POST, prefix="reverse")
    if not form.is_valid():
        context = _rda_context(request, rda, reverse_form=form)
        return render(request, "portal/rda_detail.html", context, status=400)
    try:
        dispenses.dispense_reverse(actor=request.user, rda=rda, reason=form.cleaned_data["reason"], now=_now())
    except ActionRefused as exc:
        return _refused(request, "portal/rda_detail.html", _rda_context(request, rda, reverse_form=form), exc)
    messages.success(request, "The dispense authorization is reversed.")
    return redirect("portal:rda", rda_number=rda.rda_number)


@page(roles=PHARMACY_STAFF)
@require_GET
def dispense_list(request):
    paginator = Paginator(_recent_dispenses(request), PAGE_SIZE)
    page_obj = paginator.get_page(request.GET.get("page"))
    return render(request, "portal/dispense_list.html", {"page_obj": page_obj})


# --- Auditors -------------------------------------------------------------------------------------------
@page(roles=READERS)
@require_GET
def audit_search(request):
    form = forms.AuditSearchForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(request, "portal/audit.html", {"form": form}, status=400)
    params = form.api_filters() if form.is_bound else {}
    # The log's own filters, as the API applies them: the page finds what the API and its export find.
    queryset = entries_filter(audit_events_for(request.user), **(form.filters() if form.is_bound else {}))
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
    rows = [{"entry": e, "failed": [c["code"] for c in (e.checks or []) if not c.get("passed")]} for e in entries]
    export_query = urlencode(params)
    more = urlencode({**{k: v for k, v in request.GET.items() if k != "before"}, "before": next_before}) \
        if next_before else ""
    return render(request, "portal/audit.html", {
        "form": form, "rows": rows, "export_query": export_query, "more": more,
    })


@page(roles=READERS)
@require_GET
def report(request):
    form = forms.ReportForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(request, "portal/reports.html", {"form": form}, status=400)
    args = form.report_args() if form.is_bound else {
        "period": "month", "since": None, "until": None, "program": None, "pharmacy": None}
    data = report_build(**args)
    return render(request, "portal/reports.html", {
        "form": form,
        "report": data,
        "outcome_chart": charts.decisions_by_outcome(data["decisions"], args["period"]),
        "failed_chart": charts.failed_checks(data["failed_checks"], args["period"]),
        "dispense_chart": charts.time_to_dispense(data["time_to_dispense"], args["period"]),
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
