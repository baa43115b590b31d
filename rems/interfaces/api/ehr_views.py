"""The API's side of the EHR integration: the EHRs registered to call the CDS Hooks services, and the
identifiers an EHR gives the patient of an enrollment."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from rems.program import ehr
from rems.program.models import CdsClient

from ..scoping import ADMIN, PRESCRIBER_OFFICE, READERS, get_in_scope, patients_for
from .base import ApiView, ReasonInput, StrictSerializer
from .idempotency import idempotent


class CdsClientOut(serializers.Serializer):
    id = serializers.UUIDField()
    issuer = serializers.CharField()
    algorithm = serializers.CharField(help_text="ES384 or RS384, from the key")
    jwk = serializers.JSONField(help_text="the public key")
    registered_at = serializers.DateTimeField()
    retired_at = serializers.DateTimeField(allow_null=True, help_text="once retired, its tokens are refused")


class CdsClientListCreate(ApiView):
    """EHRs registered to call the CDS Hooks services (docs/ehr.md)."""

    roles = {"GET": READERS, "POST": ADMIN}

    class CdsClientListCreateInput(StrictSerializer):
        issuer = serializers.CharField(max_length=255, help_text="the `iss` of the EHR's JWTs")
        jwk = serializers.JSONField(help_text="the EHR's public key as a JWK: EC P-384 (ES384) or RSA of 2048 bits "
                                              "or more (RS384)")

    @extend_schema(responses=CdsClientOut(many=True))
    def get(self, request):
        return self.paginated(request, CdsClient.objects.all(), CdsClientOut, "-registered_at")

    @extend_schema(request=CdsClientListCreateInput, responses={201: CdsClientOut})
    def post(self, request):
        def handle():
            data = self.CdsClientListCreateInput(data=request.data)
            data.is_valid(raise_exception=True)
            client = ehr.cds_client_register(actor=request.user, now=self.now(), **data.validated_data)
            return Response(CdsClientOut(client).data, status=201)

        return idempotent(request, handle)


class CdsClientRetire(ApiView):
    """Retire an EHR's registration: its tokens are refused from now on; its issuer may register a new key."""

    roles = {"POST": ADMIN}

    @extend_schema(request=ReasonInput, responses=CdsClientOut)
    def post(self, request, pk):
        client = get_in_scope(CdsClient.objects.all(), pk=pk)
        data = ReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        client = ehr.cds_client_retire(actor=request.user, client=client, reason=data.validated_data["reason"],
                                       now=self.now())
        return Response(CdsClientOut(client).data)


class PatientIdentifierOut(serializers.Serializer):
    id = serializers.UUIDField()
    system = serializers.CharField()
    value = serializers.CharField()
    linked_at = serializers.DateTimeField()


class PatientIdentifiers(ApiView):
    """The identifiers an EHR gives the patient, linked to the enrollment so that `$rems-etasu` and the CDS Hooks
    services find it."""

    roles = {"GET": READERS | PRESCRIBER_OFFICE, "POST": PRESCRIBER_OFFICE}

    class PatientIdentifiersInput(StrictSerializer):
        system = serializers.CharField(max_length=255, help_text="the identifier's system, e.g. the EHR's MRN system")
        value = serializers.CharField(max_length=255)

    @extend_schema(responses=PatientIdentifierOut(many=True))
    def get(self, request, pk):
        patient = get_in_scope(patients_for(request.user), pk=pk)
        return self.paginated(request, patient.identifiers.all(), PatientIdentifierOut, "-linked_at")

    @extend_schema(request=PatientIdentifiersInput, responses={201: PatientIdentifierOut, 200: PatientIdentifierOut})
    def post(self, request, pk):
        patient = get_in_scope(patients_for(request.user), pk=pk)

        def handle():
            data = self.PatientIdentifiersInput(data=request.data)
            data.is_valid(raise_exception=True)
            identifier, created = ehr.patient_identifier_link(actor=request.user, patient=patient, now=self.now(),
                                                              **data.validated_data)
            return Response(PatientIdentifierOut(identifier).data, status=201 if created else 200)

        return idempotent(request, handle)
