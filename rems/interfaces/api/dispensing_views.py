"""Prescriptions (prescriber) and dispense authorizations (pharmacy). The two decision endpoints answer 201
when approved and 422 with the same body when denied."""

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from dispensing import dispenses, match_locks, prescriptions
from dispensing.models import DispenseStatus, PrescriptionStatus
from rems.core.identifiers import (
    DISPENSE_PREFIX,
    PRESCRIPTION_PREFIX,
    MalformedIdentifier,
    authorization_number_parse,
)
from rems.program.validation import DAYS_SUPPLY, QUANTITY

from ..scoping import (
    ADMIN,
    PHARMACY_STAFF,
    PRESCRIBER_OFFICE,
    READERS,
    dispense_authorizations_for,
    get_in_scope,
    match_locks_for,
    patients_for,
    prescriptions_for,
)
from .base import (
    ApiView,
    NdcField,
    ReasonInput,
    StrictSerializer,
    choice_param,
    decision_body,
    decision_schema,
    decision_status,
)
from .idempotency import idempotent
from .problems import InvalidInput
from .throttling import DispenseThrottle


def _parse_number(value, *, prefix, kind, field):
    try:
        return authorization_number_parse(value, prefix=prefix, kind=kind)
    except MalformedIdentifier as exc:
        exc.field = field
        raise


class AuthorizationNumberField(serializers.CharField):
    """Malformed numbers are refused here, before anything is looked up."""

    def __init__(self, *, prefix, kind, **kwargs):
        self.prefix, self.kind = prefix, kind
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return authorization_number_parse(value, prefix=self.prefix, kind=self.kind)
        except MalformedIdentifier as exc:
            raise serializers.ValidationError(str(exc), code="malformed") from None


# --- Prescriptions --------------------------------------------------------------------------------------
class PrescriptionOut(serializers.Serializer):
    id = serializers.UUIDField()
    authorization_number = serializers.CharField()
    patient = serializers.UUIDField(source="patient_id")
    prescriber = serializers.UUIDField(source="prescriber_id")
    program = serializers.CharField(source="program.slug")
    ndc = serializers.CharField(source="product.ndc")
    quantity = serializers.IntegerField()
    days_supply = serializers.IntegerField()
    risk_category = serializers.CharField()
    rule_set = serializers.CharField()
    status = serializers.CharField()
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    dispensed_at = serializers.DateTimeField(allow_null=True)
    status_reason = serializers.CharField()
    decision_id = serializers.UUIDField()


class PrescriptionListCreate(ApiView):
    roles = {"GET": READERS | PRESCRIBER_OFFICE, "POST": {"prescriber"}}
    # A suspended prescriber's request is still decided, and denied by PRESCRIBER_CERTIFIED, in the log.
    allowed_when_barred = ("POST",)

    class PrescriptionListCreateInput(StrictSerializer):
        patient = serializers.UUIDField()
        ndc = NdcField()
        quantity = serializers.IntegerField(min_value=QUANTITY[0], max_value=QUANTITY[1])
        days_supply = serializers.IntegerField(min_value=DAYS_SUPPLY[0], max_value=DAYS_SUPPLY[1])

    @extend_schema(
        responses=PrescriptionOut(many=True),
        parameters=[OpenApiParameter("patient", str), OpenApiParameter("status", str)],
    )
    def get(self, request):
        qs = prescriptions_for(request.user)
        if "patient" in request.query_params:
            patient = get_in_scope(patients_for(request.user), pk=_uuid(request.query_params["patient"], "patient"))
            qs = qs.filter(patient=patient)
        status = choice_param(request, "status", PrescriptionStatus.values)
        if status is not None:
            qs = qs.filter(status=status)
        return self.paginated(request, qs, PrescriptionOut, "-issued_at")

    @extend_schema(
        request=PrescriptionListCreateInput,
        responses={
            201: decision_schema("PrescriptionDecision", authorization_number=serializers.CharField(allow_null=True),
                                 prescription_id=serializers.UUIDField(allow_null=True),
                                 risk_category=serializers.CharField()),
            422: decision_schema("PrescriptionDenied"),
        },
    )
    def post(self, request):
        def handle():
            data = self.PrescriptionListCreateInput(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            patient = get_in_scope(patients_for(request.user), pk=values["patient"])
            decision, entry, prescription = prescriptions.prescription_authorize(
                actor=request.user, patient=patient, ndc=values["ndc"], quantity=values["quantity"],
                days_supply=values["days_supply"], now=self.now(),
            )
            body = decision_body(
                decision, entry,
                authorization_number=prescription.authorization_number if prescription else None,
                prescription_id=str(prescription.pk) if prescription else None,
                risk_category=patient.risk_category,
            )
            return Response(body, status=decision_status(decision))

        return idempotent(request, handle)


def _uuid(value, field):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(field, "Not a valid id.") from None


class PrescriptionDetail(ApiView):
    roles = {"GET": READERS | PRESCRIBER_OFFICE}

    @extend_schema(responses=PrescriptionOut)
    def get(self, request, pk):
        return Response(PrescriptionOut(get_in_scope(prescriptions_for(request.user), pk=pk)).data)


class PrescriptionCancel(ApiView):
    roles = {"POST": {"prescriber"}}

    @extend_schema(request=ReasonInput, responses=PrescriptionOut)
    def post(self, request, pk):
        prescription = get_in_scope(prescriptions_for(request.user), pk=pk)
        data = ReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        prescription = prescriptions.prescription_cancel(
            actor=request.user, prescription=prescription, reason=data.validated_data["reason"], now=self.now()
        )
        return Response(PrescriptionOut(prescription).data)


# --- Dispense authorizations ----------------------------------------------------------------------------
class DispenseAuthorizationOut(serializers.Serializer):
    id = serializers.UUIDField()
    rda_number = serializers.CharField()
    authorization_number = serializers.CharField(source="prescription.authorization_number")
    program = serializers.CharField(source="prescription.program.slug")
    pharmacy = serializers.UUIDField(source="pharmacy_id")
    ndc = serializers.CharField(source="product.ndc")
    quantity = serializers.IntegerField()
    days_supply = serializers.IntegerField()
    rule_set = serializers.CharField()
    status = serializers.CharField()
    approved_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    dispensed_at = serializers.DateTimeField(allow_null=True)
    counseling_confirmed = serializers.BooleanField()
    medication_guide_provided = serializers.BooleanField()
    status_reason = serializers.CharField()
    decision_id = serializers.UUIDField()


class DispenseAuthorizationListCreate(ApiView):
    roles = {"GET": READERS | PHARMACY_STAFF, "POST": PHARMACY_STAFF}
    # A suspended pharmacy's request is still decided, and denied by PHARMACY_CERTIFIED, in the log.
    allowed_when_barred = ("POST",)
    throttle_classes = [DispenseThrottle]

    class DispenseAuthorizationListCreateInput(StrictSerializer):
        authorization_number = AuthorizationNumberField(prefix=PRESCRIPTION_PREFIX, kind="prescription authorization")
        patient_date_of_birth = serializers.DateField()
        ndc = NdcField()
        quantity = serializers.IntegerField(min_value=QUANTITY[0], max_value=QUANTITY[1])
        days_supply = serializers.IntegerField(min_value=DAYS_SUPPLY[0], max_value=DAYS_SUPPLY[1])

    @extend_schema(responses=DispenseAuthorizationOut(many=True), parameters=[OpenApiParameter("status", str)])
    def get(self, request):
        qs = dispense_authorizations_for(request.user)
        status = choice_param(request, "status", DispenseStatus.values)
        if status is not None:
            qs = qs.filter(status=status)
        return self.paginated(request, qs, DispenseAuthorizationOut, "-approved_at")

    @extend_schema(
        request=DispenseAuthorizationListCreateInput,
        responses={
            201: decision_schema("DispenseDecision", rda_number=serializers.CharField(allow_null=True),
                                 authorization_number=serializers.CharField()),
            422: decision_schema("DispenseDenied"),
        },
    )
    def post(self, request):
        def handle():
            data = self.DispenseAuthorizationListCreateInput(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            decision, entry, rda = dispenses.dispense_authorization_request(
                actor=request.user, pharmacy=request.user.pharmacy,
                authorization_number=values["authorization_number"], date_of_birth=values["patient_date_of_birth"],
                ndc=values["ndc"], quantity=values["quantity"], days_supply=values["days_supply"], now=self.now(),
            )
            body = decision_body(
                decision, entry, rda_number=rda.rda_number if rda else None,
                authorization_number=values["authorization_number"],
            )
            return Response(body, status=decision_status(decision))

        return idempotent(request, handle)


def _rda_in_scope(request, rda_number):
    number = _parse_number(rda_number, prefix=DISPENSE_PREFIX, kind="dispense authorization", field="rda_number")
    return get_in_scope(dispense_authorizations_for(request.user), rda_number=number)


class DispenseAuthorizationDetail(ApiView):
    roles = {"GET": READERS | PHARMACY_STAFF}

    @extend_schema(responses=DispenseAuthorizationOut)
    def get(self, request, rda_number):
        return Response(DispenseAuthorizationOut(_rda_in_scope(request, rda_number)).data)


class DispenseConfirm(ApiView):
    roles = {"POST": PHARMACY_STAFF}

    class DispenseConfirmInput(StrictSerializer):
        counseling_confirmed = serializers.BooleanField()
        medication_guide_provided = serializers.BooleanField()

    @extend_schema(request=DispenseConfirmInput, responses=DispenseAuthorizationOut)
    def post(self, request, rda_number):
        rda = _rda_in_scope(request, rda_number)

        def handle():
            data = self.DispenseConfirmInput(data=request.data)
            data.is_valid(raise_exception=True)
            confirmed = dispenses.dispense_confirm(actor=request.user, rda=rda, now=self.now(), **data.validated_data)
            return Response(DispenseAuthorizationOut(confirmed).data)

        return idempotent(request, handle)


class DispenseReverse(ApiView):
    roles = {"POST": PHARMACY_STAFF}

    @extend_schema(request=ReasonInput, responses=DispenseAuthorizationOut)
    def post(self, request, rda_number):
        rda = _rda_in_scope(request, rda_number)

        def handle():
            data = ReasonInput(data=request.data)
            data.is_valid(raise_exception=True)
            reversed_rda = dispenses.dispense_reverse(
                actor=request.user, rda=rda, reason=data.validated_data["reason"], now=self.now()
            )
            return Response(DispenseAuthorizationOut(reversed_rda).data)

        return idempotent(request, handle)


# --- Failed-match locks ---------------------------------------------------------------------------------
class MatchLockOut(serializers.Serializer):
    id = serializers.IntegerField()
    pharmacy = serializers.UUIDField(source="pharmacy_id")
    ncpdp_id = serializers.CharField(source="pharmacy.ncpdp_id")
    kind = serializers.CharField()
    authorization_number = serializers.CharField()
    failures = serializers.IntegerField()
    first_failure_at = serializers.DateTimeField()
    last_failure_at = serializers.DateTimeField()
    locked_at = serializers.DateTimeField(allow_null=True)
    cleared_at = serializers.DateTimeField(allow_null=True)


class MatchLockList(ApiView):
    """Failed birth-date and authorization-number matches per pharmacy; `?locked=true` for those refusing
    requests now."""

    roles = {"GET": READERS}

    @extend_schema(responses=MatchLockOut(many=True), parameters=[OpenApiParameter("locked", str)])
    def get(self, request):
        qs = match_locks_for(request.user).filter(cleared_at__isnull=True)
        locked = choice_param(request, "locked", ["true", "false"])
        if locked is not None:
            qs = qs.filter(locked_at__isnull=locked == "false")
        return self.paginated(request, qs, MatchLockOut, "-last_failure_at")


class MatchLockClear(ApiView):
    roles = {"POST": ADMIN}

    @extend_schema(request=ReasonInput, responses=MatchLockOut)
    def post(self, request, pk):
        lock = get_in_scope(match_locks_for(request.user), pk=pk)
        data = ReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        lock = match_locks.match_lock_clear(actor=request.user, lock=lock, reason=data.validated_data["reason"],
                                         now=self.now())
        return Response(MatchLockOut(lock).data)
