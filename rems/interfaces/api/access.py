"""Who may call which operation of the API: each view declares the roles allowed per method. What each caller
may see is `rems.interfaces.scoping`."""

from rest_framework import permissions

from rems.program.selectors import party_is_barred

from ..refusals import refusal_log


class RolePermission(permissions.BasePermission):
    """Views declare `roles = {"GET": {...}, "POST": {...}}`; a method not listed is allowed to nobody. A party
    that is suspended or revoked in each of its programs is refused every operation but the methods a view lists
    in `allowed_when_barred` (the decisions, which then deny and are logged); one barred in some programs only
    is refused what it does in those, by the services."""

    message = "Your role does not allow this operation."

    def has_permission(self, request, view):
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        method = request.method if request.method != "HEAD" else "GET"
        allowed = getattr(view, "roles", {}).get(method, set())
        if user.role not in allowed:
            refusal_log(request, "role")
            return False
        if method not in getattr(view, "allowed_when_barred", ()) and party_is_barred(user):
            self.message = ("The prescriber or pharmacy you act for is suspended or revoked in each of its "
                            "programs; every operation acting for it is refused.")
            refusal_log(request, "party suspended or revoked")
            return False
        return True
