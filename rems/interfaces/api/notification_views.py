"""A user's own notifications, in the app."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.models import Role
from rems.program.notifications import notification_mark_read

from ..scoping import EVERYONE, get_in_scope, notifications_for
from .base import ApiView, choice_param


class NotificationOut(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    priority = serializers.CharField()
    subject_type = serializers.CharField()
    subject_id = serializers.CharField()
    due_on = serializers.DateField()
    send_at = serializers.DateTimeField()
    title = serializers.CharField()
    body = serializers.CharField()
    state = serializers.CharField()
    sent_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)


class NotificationList(ApiView):
    """Your notifications, newest first; `?unread=true` for those not yet read."""

    roles = {"GET": EVERYONE}

    @extend_schema(responses=NotificationOut(many=True),
                   parameters=[OpenApiParameter("unread", str, enum=["true", "false"])])
    def get(self, request):
        qs = notifications_for(request.user)
        if choice_param(request, "unread", ["true", "false"]) == "true":
            qs = qs.filter(read_at__isnull=True)
        return self.paginated(request, qs, NotificationOut, "-created_at")


class NotificationRead(ApiView):
    roles = {"POST": EVERYONE - {Role.AUDITOR}}  # an auditor changes nothing, not even a read mark

    @extend_schema(request=None, responses=NotificationOut)
    def post(self, request, pk):
        notification = get_in_scope(notifications_for(request.user), pk=pk)
        return Response(NotificationOut(notification_mark_read(notification=notification, now=self.now())).data)
