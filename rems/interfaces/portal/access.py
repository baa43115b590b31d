"""Who may open which page. The same roles and the same scoped querysets as the API
(`rems.interfaces.scoping`): an object outside the caller's scope is a 404, a role that may not use a page a
403, and a suspended or revoked party is refused everything but the decisions, which then deny and are
logged."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from rems.program.selectors import party_is_barred

from ..refusals import refusal_log


def page(*, roles, decisions=()):
    """`roles`: the roles that may open the page; `decisions`: the methods that are decisions, allowed to a barred
    party so that the refusal is decided and logged by the gate engine."""

    def wrap(view):
        @wraps(view)
        def guarded(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if user.role not in roles:
                refusal_log(request, "role")
                return render(request, "portal/refused.html", {
                    "message": "Your role does not give access to this page.",
                }, status=403)
            if request.method not in decisions and party_is_barred(user):
                refusal_log(request, "party suspended or revoked")
                return render(request, "portal/refused.html", {
                    "message": ("The prescriber or pharmacy you act for is suspended or revoked in each of its "
                                "programs; every operation acting for it is refused. Contact the program "
                                "administrator."),
                }, status=403)
            return view(request, *args, **kwargs)

        return guarded

    return wrap
