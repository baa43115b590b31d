"""The service's own endpoints: health, readiness, the OpenAPI schema and its docs page, and every list."""

import pytest

from ..support.urls import url_patterns
from .flows import enroll, prescribe, request_rda

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_authentication(api):
    assert api.get("/healthz") == (200, {"status": "ok"})


def test_readyz_checks_the_database_and_the_broker(api, db):
    status, body = api.get("/readyz")
    assert status == 200, body
    assert body["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_fails_closed_when_the_broker_is_unreachable(api, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    status, body = api.get("/readyz")
    assert status == 503 and body["checks"]["broker"].startswith("unavailable")


def test_the_schema_and_the_docs_page(api, db):
    status, schema = api.get("/api/v1/schema/?format=json")
    assert status == 200
    paths = schema["paths"]
    assert "/api/v1/prescriptions/" in paths and "/api/v1/dispense-authorizations/" in paths
    assert api.client.get("/api/v1/docs/").status_code == 200


def _list_routes():
    routes = []
    for route, _ in url_patterns():
        if (route.startswith("api/v1/") and "<" not in route and route.endswith("/")
                and not route.endswith(("schema/", "docs/", "reports/"))):
            routes.append("/" + route)
    return routes


@pytest.mark.parametrize("who", ["admin", "auditor"])
def test_every_list_answers_for_the_program_roles(api, world, who):
    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"], risk_category="FNRP_ADULT")
    _, decision = prescribe(api, ours.tokens["prescriber"], patient_id)
    request_rda(api, ours.tokens["pharmacist"], decision["authorization_number"])
    routes = _list_routes()
    assert len(routes) >= 8
    for route in routes:
        status, body = api.get(route, as_=world[who])
        if route == "/api/v1/users/" and who == "auditor":
            assert status == 403
            continue
        assert status == 200, (route, body)
        assert "results" in body and "next" in body, route


def test_lists_are_paginated_with_a_next_link(api, world):
    token = world["ours"].tokens["prescriber"]
    for _ in range(3):
        enroll(api, token, risk_category="FNRP_ADULT")
    status, page = api.get("/api/v1/patients/?page_size=2", as_=token)
    assert status == 200 and len(page["results"]) == 2 and page["next"]
    status, rest = api.get(page["next"].replace("http://testserver", ""), as_=token)
    assert status == 200 and len(rest["results"]) == 1
