"""What every API view shares: authentication and roles, strict input fields, the decision response."""

from django.utils import timezone
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from rems.core import gates
from rems.core.identifiers import MalformedIdentifier, ndc_parse

from .access import RolePermission
from .problems import InvalidInput


class ApiView(APIView):
    permission_classes = [IsAuthenticated, RolePermission]
    roles: dict = {}

    @staticmethod
    def now():
        return timezone.now()

    def paginated(self, request, queryset, serializer_class, ordering):
        paginator = api_settings.DEFAULT_PAGINATION_CLASS()
        paginator.ordering = ordering
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)


class StrictSerializer(serializers.Serializer):
    """Unknown fields are an error, not silently ignored: a typo in a field name must not change a decision."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail("Unknown field.", code="unknown_field")] for name in unknown}
                )
        return super().to_internal_value(data)


class AwareDateTimeField(serializers.DateTimeField):
    """RFC 3339 with an offset; a time without one is ambiguous and refused."""

    default_error_messages = {"naive": "Give the time with its offset, e.g. 2026-11-25T09:30:00Z."}

    def to_internal_value(self, value):
        result = super().to_internal_value(value)
        if isinstance(value, str) and not (value.endswith(("Z", "z")) or value[-6:-5] in "+-" and value[-3] == ":"):
            self.fail("naive")
        return result


class CategoryField(serializers.RegexField):
    """The name of something a program's rule set defines (a risk category, a contraception method): which names
    a program has is the service's to check, against the rule set in force."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 40)
        super().__init__(r"^[A-Z][A-Z0-9_]*$", **kwargs)
        self.error_messages["invalid"] = ("An upper-case name of the program's rule set (its risk categories and methods are listed by "
                                          "GET /api/v1/programs/).")


class NdcField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 13)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return ndc_parse(value)
        except MalformedIdentifier as exc:
            raise serializers.ValidationError(str(exc), code="malformed") from None


class ReasonInput(StrictSerializer):
    reason = serializers.CharField(max_length=500)


class CheckSerializer(serializers.Serializer):
    code = serializers.CharField()
    passed = serializers.BooleanField()
    message = serializers.CharField()


DECISION_FIELDS = {
    "decision_id": serializers.UUIDField(),
    "status": serializers.ChoiceField(choices=["approved", "denied"]),
    "expires_at": serializers.DateTimeField(allow_null=True),
    "rule_set": serializers.CharField(),
    "checks": CheckSerializer(many=True),
}


def decision_schema(name, **extra):
    return inline_serializer(name, fields={**DECISION_FIELDS, **extra})


def decision_body(decision, entry, **extra):
    """The decision shape of the API contract; approved answers 201, denied 422 with the same body."""
    return {
        "decision_id": str(entry.id),
        "status": decision.status,
        **extra,
        "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
        "rule_set": decision.rule_set,
        "checks": gates.checks_as_json(decision),
    }


def decision_status(decision):
    return 201 if decision.approved else 422


def choice_param(request, name, choices):
    """A query parameter that must be one of `choices`; None when absent."""
    if name not in request.query_params:
        return None
    value = request.query_params[name]
    if value not in choices:
        raise InvalidInput(name, f"Must be one of: {', '.join(choices)}.", code="invalid_choice")
    return value
