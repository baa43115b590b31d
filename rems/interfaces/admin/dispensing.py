"""Failed-match locks on the admin site: the program administrator reviews them and clears them with a reason,
through `match_lock_clear`, which writes the compliance-log entry."""

from django.contrib import admin

from dispensing.match_locks import match_lock_clear
from dispensing.models import MatchLock

from .base import ReadOnlyAdmin, form_action


class LockStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Not cleared"), ("cleared", "Cleared"), ("all", "All")]

    def value(self):
        # The list opens on the locks still in force: those are the ones waiting for the administrator.
        return super().value() or "open"

    def choices(self, changelist):
        # Our own choices only: Django's extra "All" entry would select nothing here, "open" being the default.
        for value, label in self.lookup_choices:
            yield {
                "selected": self.value() == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(cleared_at__isnull=True)
        if self.value() == "cleared":
            return queryset.filter(cleared_at__isnull=False)
        return queryset


def _clear(lock, data, actor, now):
    match_lock_clear(actor=actor, lock=lock, reason=data["reason"], now=now)


@admin.register(MatchLock)
class MatchLockAdmin(ReadOnlyAdmin):
    list_display = ("id", "pharmacy", "kind", "authorization_number", "failures", "first_failure_at",
                    "last_failure_at", "locked_at", "cleared_at")
    list_filter = (LockStateFilter, "kind")
    list_select_related = ("pharmacy",)
    search_fields = ("pharmacy__ncpdp_id", "authorization_number")
    ordering = ("-last_failure_at",)
    actions = [form_action("clear", description="Clear the selected locks", title="Clear failed-match locks",
                           done="Cleared", run=_clear)]

    def describe(self, obj):
        return f"Lock {obj.pk} of {obj.pharmacy} ({obj.get_kind_display().lower()})"
