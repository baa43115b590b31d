"""Post/redirect/get for forms that were refused: what was typed, and why it was refused, kept in the session
for the one page that shows it again. Every post then answers with a redirect, so that every page a user lands on
can be reloaded, bookmarked and shared, and a reload never posts twice."""

from django.http import QueryDict

_PREFIX = "portal:kept:"
_NOT_KEPT = {"csrfmiddlewaretoken"}


def form_keep(request, key, *, refusal=None):
    """Keep what was posted under `key`, with the service's refusal if there was one (a message and, when the
    refusal names one, the field it concerns)."""
    data = {name: values for name, values in request.POST.lists() if name not in _NOT_KEPT}
    request.session[_PREFIX + key] = {
        "data": data,
        "refusal": ({"message": refusal.message, "field": getattr(refusal, "field", "") or ""}
                    if refusal is not None else None),
    }


def form_take(request, key):
    """What was kept under `key`, once: (data as a QueryDict, refusal) or (None, None)."""
    kept = request.session.pop(_PREFIX + key, None)
    if kept is None:
        return None, None
    data = QueryDict(mutable=True)
    for name, values in kept["data"].items():
        data.setlist(name, values)
    return data, kept["refusal"]


def refusal_place(form, refusal):
    """Put a refusal on the form: next to the field it concerns, else at the top of the form."""
    if refusal is None:
        return
    form.is_valid()
    field = refusal["field"] if refusal["field"] in form.fields else None
    form.add_error(field, refusal["message"])
