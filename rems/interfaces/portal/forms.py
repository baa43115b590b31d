"""The portal's forms. They check the shape of what was typed; the rules are checked by the same services as
the API's, which raise a refusal the page shows next to the form."""

import json
import re
import uuid
from datetime import date, datetime, time, timedelta

from django import forms
from django.db.models import Q
from django.utils import timezone

from rems.compliance_log.actions import Action
from rems.core.identifiers import DISPENSE_PREFIX, PRESCRIPTION_PREFIX, MalformedIdentifier, authorization_number_parse
from rems.program.models import Product, Program, TestResult, TestSetting
from rems.program.selectors import rule_set_in_force
from rems.program.validation import (
    DAYS_SUPPLY,
    QUANTITY,
    SENSITIVITY_MIU_ML,
    InvalidValue,
    contraception_methods_check,
)

from ..scoping import dispense_authorizations_for, patients_for, pharmacies_for, prescribers_for, prescriptions_for

DATE = forms.DateInput(attrs={"type": "date"})
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
EARLIEST, LATEST = date(1900, 1, 1), date(2199, 12, 31)


class DayField(forms.DateField):
    """A calendar date within reason: a year like 0001 or 9999 is a typing error, and would overflow the
    arithmetic that turns days into instants."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", DATE)
        super().__init__(**kwargs)

    def clean(self, value):
        day = super().clean(value)
        if day is not None and not EARLIEST <= day <= LATEST:
            raise forms.ValidationError(f"Give a date between {EARLIEST} and {LATEST}.", code="out_of_range")
        return day


class MomentField(forms.DateTimeField):
    """A date and time typed in the user's zone, within reason."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", DATETIME)
        kwargs.setdefault("input_formats", DATETIME_FORMATS)
        super().__init__(**kwargs)

    def clean(self, value):
        moment = super().clean(value)
        if moment is not None and not EARLIEST <= moment.date() <= LATEST:
            raise forms.ValidationError(f"Give a date between {EARLIEST} and {LATEST}.", code="out_of_range")
        return moment


class AuthorizationNumberField(forms.CharField):
    """A number read off paper: malformed or mistyped (the check character) is an error before any lookup."""

    def __init__(self, *, prefix, kind, **kwargs):
        self.prefix, self.kind = prefix, kind
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)
        self.widget.attrs.update({
            "autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false",
            "data-number-prefix": prefix, "data-number-kind": kind, "class": "number-input",
        })

    def clean(self, value):
        value = super().clean(value)
        try:
            return authorization_number_parse(value, prefix=self.prefix, kind=self.kind)
        except MalformedIdentifier as exc:
            raise forms.ValidationError(str(exc), code="malformed") from None


def _products(program=None):
    """The products of `program`, or every program's."""
    products = Product.objects.select_related("program").order_by("program__slug", "strength_mg", "ndc")
    return list(products.filter(program=program) if program is not None else products)


def _product_label(product):
    # The NDC first: a narrow list may cut the end of a label, never the number to check against the package.
    return f"{product.ndc} · {product.name}"


def _package_sizes(products, *, preset):
    """The attributes that let the page's script set the quantity to the chosen product's package (`preset`: the
    quantity shown is not one that was typed)."""
    attrs = {"data-package-sizes": json.dumps({p.ndc: p.package_size for p in products})}
    if preset:
        attrs["data-quantity-preset"] = ""
    return attrs


def _one_package_size(products):
    """The quantity to start from: the package size, when every product offered comes in the same one."""
    sizes = {p.package_size for p in products}
    return sizes.pop() if len(sizes) == 1 else None


def programs_in_force(now):
    """Each program with the parameters of its rule set in force (programs without a valid one left out)."""
    found = []
    for program in Program.objects.order_by("slug"):
        params = rule_set_in_force(program=program, now=now).parameters
        if params is not None:
            found.append((program, params))
    return found


def category_choices(programs):
    """Every program's risk categories, grouped by program."""
    return [(program.name, [(c.name, c.label) for c in params.risk_categories.values()])
            for program, params in programs]


def time_zone_choices(programs):
    """The programs' time zones, in the order their rule sets give them."""
    zones = []
    for _, params in programs:
        zones += [zone.key for zone in params.calendar_day_time_zones if zone.key not in zones]
    return [(zone, zone.replace("_", " ")) for zone in zones]


class EnrollForm(forms.Form):
    program = forms.ModelChoiceField(Program.objects.order_by("slug"), to_field_name="slug",
                                     empty_label="Choose the program")
    first_name = forms.CharField(max_length=80, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    last_name = forms.CharField(max_length=80, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    date_of_birth = DayField()
    risk_category = forms.ChoiceField(label="Risk category (of the program chosen above)")
    agreement_signed_on = DayField(label="Patient-Prescriber Agreement signed on")
    irregular_cycles = forms.BooleanField(
        required=False, label="Irregular menstrual cycles (pregnancy tests more often, where the program says so)")
    time_zone = forms.ChoiceField(
        required=False, label="Where the patient is tested (time zone)",
        help_text="The days of the program's windows are counted there. Not given: a window that counts calendar "
                  "days ends at its earliest end in any of the program's time zones.")

    def __init__(self, *args, now=None, **kwargs):
        super().__init__(*args, **kwargs)
        programs = programs_in_force(now or timezone.now())
        # The service checks that the category is the chosen program's, and fits the patient's age, and that
        # the time zone is one of the program's.
        # Nothing chosen in advance: a category picked by default is a category nobody chose.
        self.fields["risk_category"].choices = [("", "Choose the risk category")] + category_choices(programs)
        self.fields["time_zone"].choices = [("", "Not given")] + time_zone_choices(programs)


class PregnancyTestForm(forms.Form):
    collected_at = MomentField(label="Collected at")
    result = forms.ChoiceField(choices=TestResult.choices, widget=forms.RadioSelect)
    sensitivity_miu_ml = forms.IntegerField(min_value=SENSITIVITY_MIU_ML[0], max_value=SENSITIVITY_MIU_ML[1],
                                            label="Sensitivity (mIU/mL)")
    # Not given is a laboratory test, as in the API.
    setting = forms.ChoiceField(choices=TestSetting.choices, required=False, initial=TestSetting.LABORATORY,
                                widget=forms.RadioSelect, label="Where it was taken")

    def __init__(self, *args, params=None, **kwargs):
        super().__init__(*args, **kwargs)
        if params is not None:
            # The settings the patient's program counts at some point, and when each counts.
            counted = {"before therapy (first test)": params.test_settings_first,
                       "before therapy (second test)": params.test_settings_second,
                       "during therapy": params.test_settings_during_therapy}
            offered = [value for value, _ in TestSetting.choices if any(value in s for s in counted.values())]
            self.fields["setting"].choices = [(v, label) for v, label in TestSetting.choices if v in offered]
            labels = dict(TestSetting.choices)
            self.fields["setting"].help_text = "; ".join(
                f"{when}: {' or '.join(labels[v].lower() for v in settings)}" for when, settings in counted.items())
            self.fields["setting"].help_text = f"The tests that count {self.fields['setting'].help_text}."

    def clean_setting(self):
        return self.cleaned_data.get("setting") or TestSetting.LABORATORY


class ContraceptionForm(forms.Form):
    methods = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    abstinence = forms.BooleanField(required=False,
                                    label="Commits to continuous abstinence from heterosexual contact instead")
    started_on = DayField(label="Contraception (or abstinence) started on")

    # The check is the service's; these are its words for a form of checkboxes.
    MESSAGES = {"conflict": "Give either the methods or abstinence, not both.",
                "required": "Tick the methods used, or abstinence."}

    def __init__(self, *args, params=None, **kwargs):
        super().__init__(*args, **kwargs)
        # The methods of the patient's program, primary first.
        self.fields["methods"].choices = list(params.contraception_methods.items()) if params else []
        if params is not None and not params.contraception_abstinence_allowed:
            del self.fields["abstinence"]

    def clean(self):
        data = super().clean()
        try:
            contraception_methods_check(methods=data.get("methods") or [], abstinence=data.get("abstinence"))
        except InvalidValue as exc:
            raise forms.ValidationError(self.MESSAGES.get(exc.code, exc.message), code=exc.code) from None
        return data


class SurveyForm(forms.Form):
    completed_at = MomentField(label="Survey completed at")

    def __init__(self, *args, params=None, **kwargs):
        super().__init__(*args, **kwargs)
        if params is not None:  # the program's name for it (iPLEDGE: the comprehension questions)
            self.fields["completed_at"].label = f"{params.survey_label.capitalize()} completed at"


class AuthorizeForm(forms.Form):
    ndc = forms.ChoiceField(label="Product", widget=forms.RadioSelect)
    quantity = forms.IntegerField(min_value=QUANTITY[0], max_value=QUANTITY[1], label="Quantity (capsules)")
    days_supply = forms.IntegerField(min_value=DAYS_SUPPLY[0], max_value=DAYS_SUPPLY[1], label="Days' supply")

    def __init__(self, *args, program=None, params=None, **kwargs):
        super().__init__(*args, **kwargs)
        products = _products(program)
        self.fields["ndc"].choices = [(p.ndc, _product_label(p)) for p in products]
        if len(products) == 1:
            self.fields["ndc"].initial = products[0].ndc
        # The quantity of one package of the product, and the program's longest supply.
        self.fields["quantity"].initial = _one_package_size(products)
        self.fields["quantity"].widget.attrs.update(_package_sizes(products, preset=not self.is_bound))
        self.fields["quantity"].help_text = "Set to one package of the product chosen; change it if needed."
        if params is not None:
            self.fields["days_supply"].initial = params.max_days_supply


class CounterForm(forms.Form):
    authorization_number = AuthorizationNumberField(
        prefix=PRESCRIPTION_PREFIX, kind="prescription authorization",
        label="Prescription authorization number", help_text="12 characters, starting with P, as on the prescription.")
    patient_date_of_birth = DayField(label="Patient's date of birth")
    ndc = forms.ChoiceField(label="Product", help_text="Chosen from the authorization once its number is typed; "
                                                       "check it against the prescription and the package.")
    quantity = forms.IntegerField(min_value=QUANTITY[0], max_value=QUANTITY[1], label="Quantity (capsules)")
    days_supply = forms.IntegerField(min_value=DAYS_SUPPLY[0], max_value=DAYS_SUPPLY[1], label="Days' supply")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        products = _products()
        groups = {}
        for p in products:
            groups.setdefault(p.program.name, []).append((p.ndc, _product_label(p)))
        self.fields["ndc"].choices = [("", "Choose the product")] + list(groups.items())
        self.fields["ndc"].widget.attrs.update({"data-product-from-number": "id_authorization_number"})
        self.fields["quantity"].widget.attrs.update(_package_sizes(products, preset=not self.is_bound))


COUNSELING_POINTS = [
    ("counsel_birth_defects", "The risk of severe birth defects, and that no one else may take this medicine"),
    ("counsel_contraception", "Contraception and pregnancy testing (females) or condom use (males), as required"),
    ("counsel_donation", "No blood donation (and no sperm donation for males) during therapy and after"),
    ("counsel_return", "Unused capsules go back to the pharmacy or the manufacturer, never shared"),
]


class DispenseForm(forms.Form):
    """The counter's last step: every counseling point was covered, and the Medication Guide was handed over."""

    medication_guide_provided = forms.BooleanField(required=True, label="The Medication Guide was given to the patient")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, label in COUNSELING_POINTS:
            self.fields[name] = forms.BooleanField(required=True, label=label)
        self.order_fields([name for name, _ in COUNSELING_POINTS] + ["medication_guide_provided"])

    def counseling_confirmed(self):
        return all(self.cleaned_data.get(name) for name, _ in COUNSELING_POINTS)


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class PatientSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=80, label="Find a patient by name")


class RdaLookupForm(forms.Form):
    rda_number = AuthorizationNumberField(prefix=DISPENSE_PREFIX, kind="dispense authorization",
                                          label="RDA number")


class LowerChoiceField(forms.ChoiceField):
    """A choice typed in any case ("Denied" is "denied")."""

    def to_python(self, value):
        return super().to_python(value).strip().lower()


class CodeField(forms.RegexField):
    """A check code, typed in any case."""

    def __init__(self, **kwargs):
        super().__init__(r"^[A-Za-z_]{1,60}$", required=False, **kwargs)

    def to_python(self, value):
        return super().to_python(value).strip().upper()


def _action_choices():
    groups = {"Decisions": [], "Patients and their records": [], "Prescriptions and dispenses": [],
              "Registry, users and keys": [], "Security events": []}
    decisions = {Action.PRESCRIPTION_AUTHORIZE, Action.DISPENSE_AUTHORIZATION_REQUEST}
    for action in Action:
        subject = action.value.split(".")[0]
        if action in decisions:
            group = "Decisions"
        elif subject == "security":
            group = "Security events"
        elif subject in ("patient", "pregnancy_test", "pregnancy_report", "attestation", "patient_survey"):
            group = "Patients and their records"
        elif subject in ("prescription", "dispense_authorization"):
            group = "Prescriptions and dispenses"
        else:
            group = "Registry, users and keys"
        groups[group].append((action.value, action.value))
    return [("", "Any action")] + [(name, sorted(items)) for name, items in groups.items() if items]


OUTCOMES = ["approved", "denied", "recorded", "succeeded", "failure", "refused", "locked", "expired", "cancelled",
            "reversed", "dispensed"]
KINDS = [("records", "Decisions and records"), ("security", "Security events"), ("all", "Both")]
_NPI, _NCPDP = re.compile(r"^[0-9]{10}$"), re.compile(r"^[0-9]{7}$")


def _uuid(text):
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _by_name(queryset, text, *fields):
    """The rows of `queryset` whose `fields` contain every word of `text`, in any case."""
    for word in text.split():
        match = Q()
        for field in fields:
            match |= Q(**{f"{field}__icontains": word})
        queryset = queryset.filter(match)
    return queryset


def patient_names(user, ids):
    """patient id -> "Last, First", for the patients among `ids` that `user` may see."""
    return {p.pk: f"{p.last_name}, {p.first_name}"
            for p in patients_for(user).select_related(None).filter(pk__in=ids).only("pk", "first_name", "last_name")}


class AuditSearchForm(forms.Form):
    """The API's compliance-log filters in a person's terms: parties found by name or by the numbers people
    know (NPI, NCPDP ID, authorization or RDA number) rather than by internal ids, choices instead of free text,
    any case, and dates instead of instants (a day starts at midnight where the user is)."""

    kind = forms.ChoiceField(choices=KINDS, required=False, initial="records", label="Show")
    action = LowerChoiceField(choices=_action_choices, required=False)
    outcome = LowerChoiceField(choices=[("", "Any outcome")] + [(o, o.capitalize()) for o in OUTCOMES],
                               required=False)
    failed_check = CodeField(label="Failed check code")
    check_code = CodeField(label="Evaluated check code")
    program = LowerChoiceField(required=False)
    patient = forms.CharField(required=False, max_length=120, label="Patient: name or program id")
    prescriber = forms.CharField(required=False, max_length=120, label="Prescriber: name, NPI or id")
    pharmacy = forms.CharField(required=False, max_length=120, label="Pharmacy: name, NCPDP ID, NPI or id")
    prescription = forms.CharField(required=False, max_length=60, label="Authorization or RDA number")
    occurred_from = DayField(required=False, label="From (inclusive)")
    occurred_to = DayField(required=False, label="To (inclusive)")

    # The filters shown first; the others fold away until one is used.
    MAIN = ("kind", "action", "outcome", "patient", "occurred_from", "occurred_to")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["program"].choices = [("", "Any program")] + [
            (p.slug, p.name) for p in Program.objects.order_by("slug")]

    @property
    def more_given(self):
        return self.is_bound and any(self.data.get(name) for name in self.fields if name not in self.MAIN)

    def clean_prescription(self):
        text = self.cleaned_data["prescription"].strip()
        if not text or _uuid(text):
            return text
        for prefix, kind in ((PRESCRIPTION_PREFIX, "prescription authorization"),
                             (DISPENSE_PREFIX, "dispense authorization")):
            try:
                return authorization_number_parse(text, prefix=prefix, kind=kind)
            except MalformedIdentifier as exc:
                error = exc
                if text.strip().upper().startswith(prefix):
                    break
        raise forms.ValidationError(str(error), code="malformed")

    def filters(self):
        """The filters the log's `entries_filter` takes (a day starts at midnight where the user is)."""
        data = self.cleaned_data
        values = {name: data.get(name) for name in ("action", "outcome", "failed_check", "check_code", "program")
                  if data.get(name)}
        if data.get("occurred_from"):
            values["occurred_after"] = _midnight(data["occurred_from"])
        if data.get("occurred_to"):
            values["occurred_before"] = _midnight(data["occurred_to"], days=1)
        return values

    def kind_filter(self, queryset):
        """Security events (logins, refusals, locks) apart from decisions and records, unless asked for."""
        kind = (self.cleaned_data.get("kind") if self.is_bound else "") or "records"
        if kind == "records" and not (self.is_bound and self.cleaned_data.get("action", "").startswith("security.")):
            return queryset.exclude(action__startswith="security.")
        if kind == "security":
            return queryset.filter(action__startswith="security.")
        return queryset

    def parties_filter(self, queryset):
        data = self.cleaned_data
        if data.get("patient"):
            queryset = queryset.filter(patient_id__in=self._patients(data["patient"].strip()))
        if data.get("prescriber"):
            queryset = queryset.filter(prescriber_id__in=self._prescribers(data["prescriber"].strip()))
        if data.get("pharmacy"):
            queryset = queryset.filter(pharmacy_id__in=self._pharmacies(data["pharmacy"].strip()))
        if data.get("prescription"):
            queryset = queryset.filter(prescription_id__in=self._prescriptions(data["prescription"]))
        return queryset

    def _patients(self, text):
        found = patients_for(self.user)
        found = found.filter(pk=_uuid(text)) if _uuid(text) else _by_name(found, text, "first_name", "last_name")
        return found.values("pk")

    def _prescribers(self, text):
        found = prescribers_for(self.user)
        if _uuid(text):
            return found.filter(pk=_uuid(text)).values("pk")
        if _NPI.match(text):
            return found.filter(npi=text).values("pk")
        return _by_name(found, text, "first_name", "last_name").values("pk")

    def _pharmacies(self, text):
        found = pharmacies_for(self.user)
        if _uuid(text):
            return found.filter(pk=_uuid(text)).values("pk")
        if _NPI.match(text) or _NCPDP.match(text):
            return found.filter(Q(npi=text) | Q(ncpdp_id=text)).values("pk")
        return _by_name(found, text, "name").values("pk")

    def _prescriptions(self, text):
        if _uuid(text):
            return [_uuid(text)]
        if text.startswith(DISPENSE_PREFIX):
            return dispense_authorizations_for(self.user).filter(rda_number=text).values("prescription_id")
        return prescriptions_for(self.user).filter(authorization_number=text).values("pk")


def _midnight(day, days=0):
    return timezone.make_aware(datetime.combine(day + timedelta(days=days), time.min))


class ReportForm(forms.Form):
    period = forms.ChoiceField(choices=[(p, p.capitalize()) for p in ("day", "week", "month", "quarter", "year")],
                               initial="month", required=False)
    occurred_from = DayField(required=False, label="From (inclusive)")
    occurred_to = DayField(required=False, label="To (inclusive)")
    program = LowerChoiceField(required=False)
    pharmacy = forms.CharField(required=False, max_length=120, label="Pharmacy: name, NCPDP ID, NPI or id")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["program"].choices = [("", "Every program")] + [
            (p.slug, p.name) for p in Program.objects.order_by("slug")]

    def clean_pharmacy(self):
        text = self.cleaned_data["pharmacy"].strip()
        if not text:
            return None
        found = list(AuditSearchForm(user=self.user)._pharmacies(text)[:2])
        if not found:
            raise forms.ValidationError("No pharmacy matches.", code="not_found")
        if len(found) > 1:
            raise forms.ValidationError("Several pharmacies match: give more of the name, or the NCPDP ID.",
                                        code="ambiguous")
        return found[0]["pk"]

    def clean(self):
        data = super().clean()
        start, end = data.get("occurred_from"), data.get("occurred_to")
        if start and end and end < start:
            self.add_error("occurred_to", "The end of the range is before its start.")
        return data

    def report_args(self):
        data = self.cleaned_data
        return {
            "period": data.get("period") or "month",
            "since": _midnight(data["occurred_from"]) if data.get("occurred_from") else None,
            "until": _midnight(data["occurred_to"], days=1) if data.get("occurred_to") else None,
            "program": data.get("program") or None,
            "pharmacy": str(data["pharmacy"]) if data.get("pharmacy") else None,
        }
