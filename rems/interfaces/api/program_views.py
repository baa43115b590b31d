"""The program's API: prescribers, pharmacies, certifications, patients and their records, programs. One view
per operation, each calling one service."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from rems.core.rules import InvalidRuleSet, RuleParameters
from rems.program import certifications, patients, programs, records, registry
from rems.program.models import AttestationKind, EnrollmentTransfer, Program, Status, TestResult, TestSetting
from rems.program.selectors import rule_set_row_in_force
from rems.program.validation import (
    SENSITIVITY_MIU_ML,
    InvalidValue,
    contraception_attestation_check,
    counseling_attestation_check,
)

from ..scoping import (
    ADMIN,
    PHARMACY_STAFF,
    PRESCRIBER_OFFICE,
    READERS,
    certifications_for,
    get_in_scope,
    patients_for,
    pharmacies_for,
    prescribers_for,
)
from .base import ApiView, AwareDateTimeField, CategoryField, ReasonInput, StrictSerializer, choice_param
from .idempotency import idempotent
from .problems import InvalidInput


def _program(slug):
    program = Program.objects.filter(slug=slug).first()
    if program is None:
        raise InvalidInput("program", f"Unknown program {slug!r}.", code="unknown")
    return program


# --- Prescribers and pharmacies -------------------------------------------------------------------------
class PrescriberOut(serializers.Serializer):
    id = serializers.UUIDField()
    npi = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.EmailField()
    created_at = serializers.DateTimeField()


class PrescriberListCreate(ApiView):
    roles = {"GET": READERS | PRESCRIBER_OFFICE, "POST": ADMIN}

    class PrescriberListCreateInput(StrictSerializer):
        npi = serializers.CharField(max_length=10)
        first_name = serializers.CharField(max_length=80)
        last_name = serializers.CharField(max_length=80)
        email = serializers.EmailField(max_length=254)

    @extend_schema(responses=PrescriberOut(many=True))
    def get(self, request):
        return self.paginated(request, prescribers_for(request.user), PrescriberOut, "-created_at")

    @extend_schema(request=PrescriberListCreateInput, responses={201: PrescriberOut})
    def post(self, request):
        def handle():
            data = self.PrescriberListCreateInput(data=request.data)
            data.is_valid(raise_exception=True)
            prescriber = registry.prescriber_create(actor=request.user, now=self.now(), **data.validated_data)
            return Response(PrescriberOut(prescriber).data, status=201)

        return idempotent(request, handle)


class PrescriberDetail(ApiView):
    roles = {"GET": READERS | PRESCRIBER_OFFICE}

    @extend_schema(responses=PrescriberOut)
    def get(self, request, pk):
        return Response(PrescriberOut(get_in_scope(prescribers_for(request.user), pk=pk)).data)


class PharmacyOut(serializers.Serializer):
    id = serializers.UUIDField()
    ncpdp_id = serializers.CharField()
    npi = serializers.CharField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()


class PharmacyListCreate(ApiView):
    roles = {"GET": READERS | PHARMACY_STAFF, "POST": ADMIN}

    class PharmacyListCreateInput(StrictSerializer):
        ncpdp_id = serializers.CharField(max_length=7)
        npi = serializers.CharField(max_length=10)
        name = serializers.CharField(max_length=160)

    @extend_schema(responses=PharmacyOut(many=True))
    def get(self, request):
        return self.paginated(request, pharmacies_for(request.user), PharmacyOut, "-created_at")

    @extend_schema(request=PharmacyListCreateInput, responses={201: PharmacyOut})
    def post(self, request):
        def handle():
            data = self.PharmacyListCreateInput(data=request.data)
            data.is_valid(raise_exception=True)
            pharmacy = registry.pharmacy_create(actor=request.user, now=self.now(), **data.validated_data)
            return Response(PharmacyOut(pharmacy).data, status=201)

        return idempotent(request, handle)


class PharmacyDetail(ApiView):
    roles = {"GET": READERS | PHARMACY_STAFF}

    @extend_schema(responses=PharmacyOut)
    def get(self, request, pk):
        return Response(PharmacyOut(get_in_scope(pharmacies_for(request.user), pk=pk)).data)


# --- Certifications -------------------------------------------------------------------------------------
class CertificationOut(serializers.Serializer):
    id = serializers.UUIDField()
    program = serializers.CharField(source="program.slug")
    prescriber = serializers.UUIDField(source="prescriber_id", allow_null=True)
    pharmacy = serializers.UUIDField(source="pharmacy_id", allow_null=True)
    status = serializers.CharField()
    certified_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    status_changed_at = serializers.DateTimeField()
    status_reason = serializers.CharField()


class _PartyCertifications(ApiView):
    roles = {"GET": READERS | PRESCRIBER_OFFICE | PHARMACY_STAFF, "POST": ADMIN}
    party = ""

    class PartyCertificationsInput(StrictSerializer):
        program = serializers.CharField(max_length=40)

    def _party(self, request, pk):
        scoped = prescribers_for(request.user) if self.party == "prescriber" else pharmacies_for(request.user)
        return get_in_scope(scoped, pk=pk)

    @extend_schema(responses=CertificationOut(many=True))
    def get(self, request, pk):
        party = self._party(request, pk)
        qs = certifications_for(request.user).filter(**{self.party: party})
        return self.paginated(request, qs, CertificationOut, "-certified_at")

    @extend_schema(request=PartyCertificationsInput, responses={201: CertificationOut})
    def post(self, request, pk):
        party = self._party(request, pk)

        def handle():
            data = self.PartyCertificationsInput(data=request.data)
            data.is_valid(raise_exception=True)
            certification = certifications.certification_create(
                actor=request.user, program=_program(data.validated_data["program"]), now=self.now(),
                **{self.party: party},
            )
            return Response(CertificationOut(certification).data, status=201)

        return idempotent(request, handle)


class PrescriberCertifications(_PartyCertifications):
    roles = {"GET": READERS | PRESCRIBER_OFFICE, "POST": ADMIN}
    party = "prescriber"


class PharmacyCertifications(_PartyCertifications):
    roles = {"GET": READERS | PHARMACY_STAFF, "POST": ADMIN}
    party = "pharmacy"


class CertificationDetail(ApiView):
    roles = {"GET": READERS | PRESCRIBER_OFFICE | PHARMACY_STAFF}

    @extend_schema(responses=CertificationOut)
    def get(self, request, pk):
        return Response(CertificationOut(get_in_scope(certifications_for(request.user), pk=pk)).data)


class CertificationChangeStatus(ApiView):
    roles = {"POST": ADMIN}
    action = ""

    @extend_schema(request=ReasonInput, responses=CertificationOut)
    def post(self, request, pk):
        certification = get_in_scope(certifications_for(request.user), pk=pk)
        data = ReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        certification = certifications.certification_change_status(
            actor=request.user, certification=certification, action=self.action,
            reason=data.validated_data["reason"], now=self.now(),
        )
        return Response(CertificationOut(certification).data)


# --- Patients -------------------------------------------------------------------------------------------
class PatientOut(serializers.Serializer):
    id = serializers.UUIDField()
    program = serializers.CharField(source="program.slug")
    prescriber = serializers.UUIDField(source="prescriber_id")
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    date_of_birth = serializers.DateField()
    risk_category = serializers.CharField()
    agreement_signed_on = serializers.DateField()
    irregular_cycles = serializers.BooleanField()
    time_zone = serializers.CharField(help_text="where calendar days are counted for the patient; empty: all of the "
                                                "program's time zones")
    status = serializers.CharField()
    status_reason = serializers.CharField()
    enrolled_at = serializers.DateTimeField()
    therapy_started_at = serializers.DateTimeField(allow_null=True)


class EnrollmentTransferOut(serializers.Serializer):
    id = serializers.UUIDField()
    state = serializers.CharField()
    detail = serializers.SerializerMethodField()

    def get_detail(self, transfer) -> str:
        return ("This enrollment needs the program administrator's review before it takes effect. The administrator "
                "will contact your office; the patient cannot be prescribed for under your office until then.")


class PatientListCreate(ApiView):
    roles = {"GET": READERS | PRESCRIBER_OFFICE, "POST": {"prescriber"}}

    class PatientListCreateInput(StrictSerializer):
        program = serializers.CharField(max_length=40)
        first_name = serializers.CharField(max_length=80)
        last_name = serializers.CharField(max_length=80)
        date_of_birth = serializers.DateField()
        risk_category = CategoryField(help_text="one of the program's risk categories (GET /api/v1/programs/)")
        agreement_signed_on = serializers.DateField()
        irregular_cycles = serializers.BooleanField(required=False, default=False)
        time_zone = serializers.CharField(
            max_length=64, required=False, allow_blank=True, default="",
            help_text="one of the program's time zones (GET /api/v1/programs/, rule_set.parameters."
                      "calendar_day_time_zones): where the patient is tested; the calendar days of the program's "
                      "windows are counted there. Not given: the windows end at their earliest end among all of "
                      "them.")

    @extend_schema(
        responses=PatientOut(many=True),
        parameters=[OpenApiParameter("status", str), OpenApiParameter("risk_category", str)],
    )
    def get(self, request):
        qs = patients_for(request.user)
        status = choice_param(request, "status", Status.values)
        if status is not None:
            qs = qs.filter(status=status)
        if "risk_category" in request.query_params:
            qs = qs.filter(risk_category=CategoryField().run_validation(request.query_params["risk_category"]))
        return self.paginated(request, qs, PatientOut, "-enrolled_at")

    @extend_schema(request=PatientListCreateInput, responses={201: PatientOut, 202: EnrollmentTransferOut})
    def post(self, request):
        """Enroll a patient (201). A person enrolled in the program by another office is not enrolled twice: the
        request goes to the program administrator as an enrollment transfer (202), and nothing of the other
        enrollment is shown."""
        def handle():
            data = self.PatientListCreateInput(data=request.data)
            data.is_valid(raise_exception=True)
            values = dict(data.validated_data)
            result = patients.patient_enroll(
                actor=request.user, prescriber=request.user.prescriber, program=_program(values.pop("program")),
                now=self.now(), **values,
            )
            if isinstance(result, EnrollmentTransfer):
                return Response(EnrollmentTransferOut(result).data, status=202)
            return Response(PatientOut(result).data, status=201)

        return idempotent(request, handle)


class PatientDetail(ApiView):
    roles = {"GET": READERS | PRESCRIBER_OFFICE}

    @extend_schema(responses=PatientOut)
    def get(self, request, pk):
        return Response(PatientOut(get_in_scope(patients_for(request.user), pk=pk)).data)


class PatientRiskCategory(ApiView):
    roles = {"POST": {"prescriber"}}

    class PatientRiskCategoryInput(StrictSerializer):
        risk_category = CategoryField(help_text="one of the program's risk categories")
        agreement_signed_on = serializers.DateField(help_text="the date the new agreement was signed")
        reason = serializers.CharField(max_length=500, help_text="why the category changes, e.g. its clinical basis")
        irregular_cycles = serializers.BooleanField(required=False, allow_null=True, default=None)

    @extend_schema(request=PatientRiskCategoryInput, responses=PatientOut)
    def post(self, request, pk):
        patient = get_in_scope(patients_for(request.user), pk=pk)
        data = self.PatientRiskCategoryInput(data=request.data)
        data.is_valid(raise_exception=True)
        patient = patients.patient_change_risk_category(
            actor=request.user, patient=patient, now=self.now(), **data.validated_data
        )
        return Response(PatientOut(patient).data)


class PatientChangeStatus(ApiView):
    roles = {"POST": ADMIN}
    action = ""

    @extend_schema(request=ReasonInput, responses=PatientOut)
    def post(self, request, pk):
        patient = get_in_scope(patients_for(request.user), pk=pk)
        data = ReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        patient = patients.patient_change_status(
            actor=request.user, patient=patient, action=self.action, reason=data.validated_data["reason"],
            now=self.now(),
        )
        return Response(PatientOut(patient).data)


class PregnancyTestOut(serializers.Serializer):
    id = serializers.UUIDField()
    patient = serializers.UUIDField(source="patient_id")
    collected_at = serializers.DateTimeField()
    result = serializers.CharField()
    sensitivity_miu_ml = serializers.IntegerField()
    setting = serializers.CharField()
    recorded_at = serializers.DateTimeField()


class PatientPregnancyTests(ApiView):
    roles = {"GET": READERS | PRESCRIBER_OFFICE, "POST": PRESCRIBER_OFFICE}

    class PatientPregnancyTestsInput(StrictSerializer):
        collected_at = AwareDateTimeField()
        result = serializers.ChoiceField(choices=TestResult.values)
        sensitivity_miu_ml = serializers.IntegerField(min_value=SENSITIVITY_MIU_ML[0],
                                                      max_value=SENSITIVITY_MIU_ML[1])
        setting = serializers.ChoiceField(choices=TestSetting.values, required=False, default=TestSetting.LABORATORY,
                                          help_text="where the specimen was collected and tested")

    @extend_schema(responses=PregnancyTestOut(many=True))
    def get(self, request, pk):
        patient = get_in_scope(patients_for(request.user), pk=pk)
        return self.paginated(request, patient.pregnancy_tests.all(), PregnancyTestOut, "-collected_at")

    @extend_schema(request=PatientPregnancyTestsInput, responses={201: PregnancyTestOut})
    def post(self, request, pk):
        patient = get_in_scope(patients_for(request.user), pk=pk)

        def handle():
            data = self.PatientPregnancyTestsInput(data=request.data)
            data.is_valid(raise_exception=True)
            test = records.pregnancy_test_record(actor=request.user, patient=patient, now=self.now(), **data.validated_data)
            return Response(PregnancyTestOut(test).data, status=201)

        return idempotent(request, handle)


class AttestationOut(serializers.Serializer):
    id = serializers.UUIDField()
    patient = serializers.UUIDField(source="patient_id")
    kind = serializers.CharField()
    methods = serializers.ListField(child=serializers.CharField())
    abstinence = serializers.BooleanField()
    started_on = serializers.DateField(allow_null=True)
    attested_at = serializers.DateTimeField()


class PatientAttestations(ApiView):
    roles = {"GET": READERS | PRESCRIBER_OFFICE, "POST": PRESCRIBER_OFFICE}

    class PatientAttestationsInput(StrictSerializer):
        kind = serializers.ChoiceField(choices=AttestationKind.values)
        methods = serializers.ListField(
            child=CategoryField(help_text="a contraception method of the program (GET /api/v1/programs/)"),
            required=False, default=list, max_length=20,
        )
        abstinence = serializers.BooleanField(required=False, default=False)
        started_on = serializers.DateField(required=False, allow_null=True, default=None)

        def validate(self, attrs):
            # The service applies the same checks; here they point at the field.
            values = {"methods": attrs["methods"], "abstinence": attrs["abstinence"], "started_on": attrs["started_on"]}
            try:
                if attrs["kind"] == AttestationKind.CONTRACEPTION:
                    contraception_attestation_check(**values)
                else:
                    counseling_attestation_check(**values, kind=attrs["kind"])
            except InvalidValue as exc:
                detail = {exc.field: exc.message} if exc.field else exc.message
                raise serializers.ValidationError(detail, code=exc.code) from None
            return attrs

    @extend_schema(responses=AttestationOut(many=True))
    def get(self, request, pk):
        patient = get_in_scope(patients_for(request.user), pk=pk)
        return self.paginated(request, patient.attestations.all(), AttestationOut, "-attested_at")

    @extend_schema(request=PatientAttestationsInput, responses={201: AttestationOut})
    def post(self, request, pk):
        patient = get_in_scope(patients_for(request.user), pk=pk)

        def handle():
            data = self.PatientAttestationsInput(data=request.data)
            data.is_valid(raise_exception=True)
            attestation = records.attestation_record(
                actor=request.user, patient=patient, now=self.now(), **data.validated_data
            )
            return Response(AttestationOut(attestation).data, status=201)

        return idempotent(request, handle)


class SurveyOut(serializers.Serializer):
    id = serializers.UUIDField()
    patient = serializers.UUIDField(source="patient_id")
    completed_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()


class PatientSurveys(ApiView):
    roles = {"GET": READERS | PRESCRIBER_OFFICE, "POST": PRESCRIBER_OFFICE | ADMIN}

    class PatientSurveysInput(StrictSerializer):
        completed_at = AwareDateTimeField()

    @extend_schema(responses=SurveyOut(many=True))
    def get(self, request, pk):
        patient = get_in_scope(patients_for(request.user), pk=pk)
        return self.paginated(request, patient.surveys.all(), SurveyOut, "-completed_at")

    @extend_schema(request=PatientSurveysInput, responses={201: SurveyOut})
    def post(self, request, pk):
        patient = get_in_scope(patients_for(request.user), pk=pk)

        def handle():
            data = self.PatientSurveysInput(data=request.data)
            data.is_valid(raise_exception=True)
            survey = records.survey_record(actor=request.user, patient=patient, now=self.now(), **data.validated_data)
            return Response(SurveyOut(survey).data, status=201)

        return idempotent(request, handle)


# --- Programs -------------------------------------------------------------------------------------------
class ProductOut(serializers.Serializer):
    ndc = serializers.CharField()
    name = serializers.CharField()
    strength_mg = serializers.FloatField()
    package_size = serializers.IntegerField()


class CategoryOut(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    can_get_pregnant = serializers.BooleanField()
    male = serializers.BooleanField()
    age = serializers.ChoiceField(choices=["adult", "child", "any"])


class RuleSetOut(serializers.Serializer):
    label = serializers.CharField()
    version = serializers.CharField()
    effective_at = serializers.DateTimeField()
    parameters = serializers.JSONField()
    sources = serializers.JSONField()


class ProgramOut(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    ingredient = serializers.CharField()
    rxnorm = serializers.CharField(help_text="the RxNorm code of the ingredient")
    products = ProductOut(many=True)
    risk_categories = CategoryOut(many=True)
    rule_set = RuleSetOut(allow_null=True, help_text="the rule set in force now")


def _rule_set_out(rule_set):
    return {"label": rule_set.label, "version": rule_set.version, "effective_at": rule_set.effective_at,
            "parameters": rule_set.parameters, "sources": rule_set.sources}


def _categories(rule_set):
    try:
        params = RuleParameters.from_dict(rule_set.parameters) if rule_set else None
    except InvalidRuleSet:
        params = None
    if params is None:
        return []
    return [{"name": c.name, "label": c.label, "can_get_pregnant": c.can_get_pregnant, "male": c.male, "age": c.age}
            for c in params.risk_categories.values()]


class ProgramList(ApiView):
    """Every program with its products, its risk categories and the rule set in force now."""

    roles = {"GET": READERS | PRESCRIBER_OFFICE | PHARMACY_STAFF}

    @extend_schema(responses=inline_serializer("ProgramPage", fields={
        "results": ProgramOut(many=True),
        "next": serializers.CharField(allow_null=True, help_text="always null: every program is on this one page"),
    }))
    def get(self, request):
        now = self.now()
        results = []
        for program in Program.objects.prefetch_related("products").order_by("slug"):
            rule_set = rule_set_row_in_force(program=program, now=now)
            results.append({
                "slug": program.slug,
                "name": program.name,
                "ingredient": program.ingredient,
                "rxnorm": program.rxnorm,
                "products": [
                    {"ndc": p.ndc, "name": p.name, "strength_mg": float(p.strength_mg), "package_size": p.package_size}
                    for p in sorted(program.products.all(), key=lambda p: p.strength_mg)
                ],
                "risk_categories": _categories(rule_set),
                "rule_set": _rule_set_out(rule_set) if rule_set else None,
            })
        return Response({"results": ProgramOut(results, many=True).data, "next": None})


class ProgramRuleSets(ApiView):
    """Load a new version of a program's rules. It takes effect at `effective_at` (now or later, never in the
    past), and never replaces a version: decisions already made keep the rules they were made under."""

    roles = {"POST": ADMIN}

    class ProgramRuleSetsInput(StrictSerializer):
        version = serializers.CharField(max_length=40)
        effective_at = AwareDateTimeField()
        parameters = serializers.JSONField(help_text="every parameter of the rule set (docs/programs.md)")
        sources = serializers.JSONField(required=False, default=dict,
                                        help_text="where each parameter comes from, by parameter")

    @extend_schema(request=ProgramRuleSetsInput, responses={201: RuleSetOut})
    def post(self, request, slug):
        program = get_in_scope(Program.objects.all(), slug=slug)

        def handle():
            data = self.ProgramRuleSetsInput(data=request.data)
            data.is_valid(raise_exception=True)
            rule_set = programs.rule_set_load(actor=request.user, program=program, now=self.now(),
                                              **data.validated_data)
            return Response(RuleSetOut(_rule_set_out(rule_set)).data, status=201)

        return idempotent(request, handle)
