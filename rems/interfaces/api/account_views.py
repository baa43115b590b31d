"""Users and keys, for the program administrator. A key is in the answer once and never again."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from accounts import services
from accounts.models import ApiKey, Role
from rems.program.models import Pharmacy, Prescriber

from ..scoping import ADMIN, get_in_scope, users_for
from .base import ApiView, StrictSerializer
from .idempotency import idempotent
from .problems import InvalidInput


class UserOut(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.CharField()
    prescriber = serializers.UUIDField(source="prescriber_id", allow_null=True)
    pharmacy = serializers.UUIDField(source="pharmacy_id", allow_null=True)
    is_active = serializers.BooleanField()
    date_joined = serializers.DateTimeField()


class ApiKeyOut(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.IntegerField(source="user_id")
    prefix = serializers.CharField()
    label = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


def _party(model, pk, field):
    if pk is None:
        return None
    party = model.objects.filter(pk=pk).first()
    if party is None:
        raise InvalidInput(field, f"No {field} has this id.", code="unknown")
    return party


MANAGERS = ADMIN | {Role.PHARMACY_MANAGER}


class UserListCreate(ApiView):
    """Administrators create any user; a pharmacy's authorized representative creates its own pharmacists."""

    roles = {"GET": MANAGERS, "POST": MANAGERS}

    class UserListCreateInput(StrictSerializer):
        username = serializers.RegexField(r"^[\w.@+-]{3,150}$", max_length=150)
        role = serializers.ChoiceField(choices=Role.values)
        prescriber = serializers.UUIDField(required=False, allow_null=True, default=None)
        pharmacy = serializers.UUIDField(required=False, allow_null=True, default=None)
        email = serializers.EmailField(required=False, default="", max_length=254)

    @extend_schema(responses=UserOut(many=True))
    def get(self, request):
        return self.paginated(request, users_for(request.user), UserOut, "-date_joined")

    @extend_schema(request=UserListCreateInput, responses={201: UserOut})
    def post(self, request):
        def handle():
            data = self.UserListCreateInput(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
            now = self.now()
            if request.user.role == Role.PHARMACY_MANAGER:
                if values["role"] != Role.PHARMACIST or values["prescriber"]:
                    raise PermissionDenied("A pharmacy's authorized representative creates pharmacists of its own "
                                           "pharmacy only.")
                values = {**values, "pharmacy": request.user.pharmacy_id}
            user = services.user_create(
                actor=request.user, username=values["username"], role=values["role"], email=values["email"],
                prescriber=_party(Prescriber, values["prescriber"], "prescriber"),
                pharmacy=_party(Pharmacy, values["pharmacy"], "pharmacy"), now=now,
            )
            api_key, token = services.api_key_issue(actor=request.user, user=user, now=now)
            return Response({**UserOut(user).data, "token": token, "key": ApiKeyOut(api_key).data}, status=201)

        return idempotent(request, handle, secret_fields=("token",))


class UserKeys(ApiView):
    """Issue another key (rotation: the old one keeps working until it is revoked) or list a user's keys."""

    roles = {"GET": MANAGERS, "POST": MANAGERS}

    class UserKeysInput(StrictSerializer):
        label = serializers.CharField(required=False, default="", max_length=100)

    @extend_schema(responses=ApiKeyOut(many=True))
    def get(self, request, pk):
        user = get_in_scope(users_for(request.user), pk=pk)
        return self.paginated(request, user.api_keys.all(), ApiKeyOut, "-created_at")

    @extend_schema(request=UserKeysInput, responses={201: ApiKeyOut})
    def post(self, request, pk):
        user = get_in_scope(users_for(request.user), pk=pk)

        def handle():
            data = self.UserKeysInput(data=request.data)
            data.is_valid(raise_exception=True)
            api_key, token = services.api_key_issue(
                actor=request.user, user=user, label=data.validated_data["label"], now=self.now()
            )
            return Response({**ApiKeyOut(api_key).data, "token": token}, status=201)

        return idempotent(request, handle, secret_fields=("token",))


class ApiKeyRevoke(ApiView):
    roles = {"POST": MANAGERS}

    @extend_schema(request=None, responses=ApiKeyOut)
    def post(self, request, pk):
        api_key = get_in_scope(ApiKey.objects.filter(user__in=users_for(request.user)), pk=pk)
        return Response(ApiKeyOut(services.api_key_revoke(actor=request.user, api_key=api_key, now=self.now())).data)


class UserDeactivate(ApiView):
    """The user can no longer log in or use any key; every key of theirs is revoked."""

    roles = {"POST": MANAGERS}

    class UserDeactivateInput(StrictSerializer):
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=UserDeactivateInput, responses=UserOut)
    def post(self, request, pk):
        user = get_in_scope(users_for(request.user), pk=pk)
        data = self.UserDeactivateInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_deactivate(actor=request.user, user=user, reason=data.validated_data["reason"],
                                        now=self.now())
        return Response(UserOut(user).data)
