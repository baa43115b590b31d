"""Users on the admin site: a read-only list; deactivation goes through `user_deactivate`, which revokes the
user's keys and writes the compliance-log entry."""

from django.contrib import admin

from accounts.models import User
from accounts.services import user_deactivate

from .base import ReadOnlyAdmin, form_action


def _deactivate(user, data, actor, now):
    user_deactivate(actor=actor, user=user, reason=data["reason"], now=now)


@admin.register(User)
class UserAdmin(ReadOnlyAdmin):
    list_display = ("username", "role", "prescriber", "pharmacy", "is_active", "is_staff", "last_login")
    list_filter = ("role", "is_active")
    list_select_related = ("prescriber", "pharmacy")
    search_fields = ("username", "email")
    # Never the password hash, even read-only.
    fields = ("username", "email", "role", "prescriber", "pharmacy", "is_active", "is_staff", "is_superuser",
              "last_login", "date_joined")
    actions = [form_action("deactivate", description="Deactivate the selected users", title="Deactivate users",
                           done="Deactivated", run=_deactivate)]

    def describe(self, obj):
        return f"User {obj.username} ({obj.get_role_display().lower()})"
