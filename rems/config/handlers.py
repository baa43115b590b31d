"""The site's error answers: a page for the portal and the admin site, a problem document for the API and the
health checks. No error page may fail in turn."""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

from rems.interfaces.api.problems import PROBLEM_CONTENT_TYPE, problem


def _json_problem(status_code, detail):
    return JsonResponse(problem(status_code, detail), status=status_code, content_type=PROBLEM_CONTENT_TYPE)


def _page(request):
    """The portal's and the admin site's pages answer errors with a page; the API with a problem document."""
    return not request.path.startswith(("/api/", "/healthz", "/readyz"))


def _html(request, status_code, template, message=""):
    try:
        return render(request, template, {"message": message}, status=status_code)
    except Exception:  # noqa: BLE001 - an error page must not fail in turn (database down, say)
        return HttpResponse(message or "Error", status=status_code, content_type="text/plain; charset=utf-8")


def handler400(request, exception=None):
    if _page(request):
        return _html(request, 400, "portal/refused.html", "The request could not be understood.")
    return _json_problem(400, "Bad request.")


def handler403(request, exception=None):
    if _page(request):
        return _html(request, 403, "portal/refused.html", "Not allowed.")
    return _json_problem(403, "Not allowed.")


def handler404(request, exception=None):
    if _page(request):
        return _html(request, 404, "portal/not_found.html")
    return _json_problem(404, "Not found.")


def handler500(request):
    # Called while the exception is being handled: one from a database that did not answer in time (or could not
    # be reached, or cancelled the statement), in a view or in a middleware reading the session, is a 503.
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        return database_unavailable(request)
    if _page(request):
        return HttpResponse("The service could not complete this request; nothing was approved.", status=500,
                            content_type="text/plain; charset=utf-8")
    return _json_problem(500, "The service could not complete this request; nothing was approved.")


UNAVAILABLE = "The service could not complete this request just now; nothing was approved or recorded. Try again."


def database_unavailable(request):
    """The database did not answer in time: 503, nothing done. The page is plain text, since rendering the portal's
    templates could query the database again."""
    if _page(request):
        response = HttpResponse(UNAVAILABLE, status=503, content_type="text/plain; charset=utf-8")
    else:
        response = _json_problem(503, UNAVAILABLE)
    response["Retry-After"] = "1"
    return response


def csrf_failure(request, reason=""):
    if _page(request):
        return _html(request, 403, "portal/refused.html",
                     "This form had expired or was not sent by this site's page. Reload the page and try again.")
    return _json_problem(403, "CSRF check failed; browser sessions must send the CSRF token.")
