"""The portal's forms. They check the shape of what was typed; the rules are checked by the same services as
the API's, which raise a refusal the page shows next to the form."""

from datetime import date, datetime, time, timedelta

from django import forms
from django.utils import timezone

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
    """The products of `program`; without one, every program's, grouped by program."""
    products = Product.objects.select_related("program").order_by("program__slug", "strength_mg", "ndc")
    if program is not None:
        return [(p.ndc, f"{p.name} ({p.ndc})") for p in products.filter(program=program)]
    groups = {}
    for p in products:
        groups.setdefault(p.program.name, []).append((p.ndc, f"{p.name} ({p.ndc})"))
    return list(groups.items())


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
    program = forms.ModelChoiceField(Program.objects.order_by("slug"), to_field_name="slug", empty_label=None)
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
        self.fields["risk_category"].choices = category_choices(programs)
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
    ndc = forms.ChoiceField(label="Product")
    quantity = forms.IntegerField(min_value=QUANTITY[0], max_value=QUANTITY[1], label="Quantity (capsules)")
    days_supply = forms.IntegerField(min_value=DAYS_SUPPLY[0], max_value=DAYS_SUPPLY[1], label="Days' supply")

    def __init__(self, *args, program=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ndc"].choices = _products(program)


class CounterForm(forms.Form):
    authorization_number = AuthorizationNumberField(
        prefix=PRESCRIPTION_PREFIX, kind="prescription authorization",
        label="Prescription authorization number", help_text="12 characters, starting with P, as on the prescription.")
    patient_date_of_birth = DayField(label="Patient's date of birth")
    ndc = forms.ChoiceField(label="Product")
    quantity = forms.IntegerField(min_value=QUANTITY[0], max_value=QUANTITY[1], label="Quantity (capsules)")
    days_supply = forms.IntegerField(min_value=DAYS_SUPPLY[0], max_value=DAYS_SUPPLY[1], label="Days' supply")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ndc"].choices = _products()


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


class AuditSearchForm(forms.Form):
    """The API's compliance-log filters, with dates instead of instants (a day starts at midnight where the user
    is)."""

    action = forms.CharField(required=False, max_length=60)
    outcome = forms.CharField(required=False, max_length=20)
    failed_check = forms.RegexField(r"^[A-Z_]{1,60}$", required=False, label="Failed check code")
    check_code = forms.RegexField(r"^[A-Z_]{1,60}$", required=False, label="Evaluated check code")
    program = forms.CharField(required=False, max_length=40)
    patient = forms.UUIDField(required=False, label="Patient id")
    prescriber = forms.UUIDField(required=False, label="Prescriber id")
    pharmacy = forms.UUIDField(required=False, label="Pharmacy id")
    prescription = forms.UUIDField(required=False, label="Prescription id")
    occurred_from = DayField(required=False, label="From (inclusive)")
    occurred_to = DayField(required=False, label="To (inclusive)")

    def filters(self):
        """The filters as the log's `entries_filter` takes them (a day starts at midnight where the user is)."""
        values = {name: value for name, value in self.cleaned_data.items()
                  if value not in (None, "") and name not in ("occurred_from", "occurred_to")}
        if self.cleaned_data.get("occurred_from"):
            values["occurred_after"] = _midnight(self.cleaned_data["occurred_from"])
        if self.cleaned_data.get("occurred_to"):
            values["occurred_before"] = _midnight(self.cleaned_data["occurred_to"], days=1)
        return values

    def api_filters(self):
        """The same filters as query parameters of the API (for the CSV export's link)."""
        params = {}
        for name, value in self.cleaned_data.items():
            if value in (None, ""):
                continue
            if name == "occurred_from":
                params["occurred_after"] = _midnight(value).isoformat()
            elif name == "occurred_to":
                params["occurred_before"] = _midnight(value, days=1).isoformat()
            else:
                params[name] = str(value)
        return params


def _midnight(day, days=0):
    return timezone.make_aware(datetime.combine(day + timedelta(days=days), time.min))


class ReportForm(forms.Form):
    period = forms.ChoiceField(choices=[(p, p.capitalize()) for p in ("day", "week", "month", "quarter", "year")],
                               initial="month", required=False)
    occurred_from = DayField(required=False, label="From (inclusive)")
    occurred_to = DayField(required=False, label="To (inclusive)")
    program = forms.CharField(required=False, max_length=40)
    pharmacy = forms.UUIDField(required=False, label="Pharmacy id")

    def report_args(self):
        data = self.cleaned_data
        return {
            "period": data.get("period") or "month",
            "since": _midnight(data["occurred_from"]) if data.get("occurred_from") else None,
            "until": _midnight(data["occurred_to"], days=1) if data.get("occurred_to") else None,
            "program": data.get("program") or None,
            "pharmacy": str(data["pharmacy"]) if data.get("pharmacy") else None,
        }
