"""Bodies and cursors no client would send: a 400 problem naming what is wrong, never a 500, never a write.
One test per class of input; `test_input.py` has the values of each field."""

import base64
import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from rems.compliance_log.models import ComplianceLogEntry
from rems.interfaces.api.parsers import MAX_DEPTH

from .flows import enroll, prescribe, ready_frp_patient

pytestmark = pytest.mark.django_db


def assert_problem(api, status, body, expected_status=400):
    assert status == expected_status, body
    assert api.last["Content-Type"] == "application/problem+json"
    assert body["status"] == expected_status and body["title"] and body["detail"]


def nested(depth, *, kind="list"):
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a": ' * depth + "1" + "}" * depth


# The POST routes of each role that parse their body, with the token that may call them.
def _post_routes(world, patient_id):
    ours = world["ours"]
    return [
        ("/api/v1/prescriptions/", ours.tokens["prescriber"]),
        ("/api/v1/patients/", ours.tokens["prescriber"]),
        (f"/api/v1/patients/{patient_id}/pregnancy-tests/", ours.tokens["prescriber"]),
        (f"/api/v1/patients/{patient_id}/attestations/", ours.tokens["delegate"]),
        (f"/api/v1/patients/{patient_id}/surveys/", world["admin"]),
        (f"/api/v1/patients/{patient_id}/risk-category", ours.tokens["prescriber"]),
        (f"/api/v1/patients/{patient_id}/suspend", world["admin"]),
        (f"/api/v1/patients/{patient_id}/identifiers/", ours.tokens["prescriber"]),
        ("/api/v1/dispense-authorizations/", ours.tokens["pharmacist"]),
        ("/api/v1/prescribers/", world["admin"]),
        ("/api/v1/pharmacies/", world["admin"]),
        (f"/api/v1/prescribers/{ours.prescriber.pk}/certifications/", world["admin"]),
        ("/api/v1/users/", world["admin"]),
        ("/api/v1/users/", ours.tokens["pharmacy_manager"]),
        ("/api/v1/cds-clients/", world["admin"]),
        ("/api/v1/programs/pomalidomide/rule-sets/", world["admin"]),
    ]


@pytest.mark.parametrize("kind", ["list", "object"])
def test_json_nested_a_thousand_levels_deep_is_400_on_every_post_route(api, world, kind, same_minute):
    patient_id = enroll(api, world["ours"].tokens["prescriber"])
    log_size = ComplianceLogEntry.objects.count()
    for path, token in _post_routes(world, patient_id):
        for depth in (1000, 100_000):
            status, body = api.post(path, raw=nested(depth, kind=kind), as_=token)
            assert_problem(api, status, body)
            assert "nested" in body["detail"], (path, body)
    assert ComplianceLogEntry.objects.count() == log_size


def test_the_depth_limit_is_exact(api, world):
    token = world["ours"].tokens["prescriber"]
    status, body = api.post("/api/v1/prescriptions/", raw=nested(MAX_DEPTH + 1, kind="object"), as_=token)
    assert_problem(api, status, body)
    assert "nested" in body["detail"]

    status, body = api.post("/api/v1/prescriptions/", raw=nested(MAX_DEPTH, kind="object"), as_=token)
    assert_problem(api, status, body)
    assert "nested" not in body["detail"]  # parsed, then refused by the serializer: `a` is no field
    assert {e["field"] for e in body["errors"]} >= {"a"}


def test_a_deep_body_with_an_idempotency_key_is_refused_before_the_key_is_claimed(api, world):
    from rems.program.models import IdempotencyRecord

    status, body = api.post("/api/v1/prescriptions/", raw=nested(5000), as_=world["ours"].tokens["prescriber"],
                            headers={"Idempotency-Key": "deep-1"})
    assert_problem(api, status, body)
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("content_type", [
    "application/json; charset=zlib", "application/json; charset=base64", "application/json; charset=rot13",
    "application/json; charset=no-such-charset", "application/json; charset=utf-16",
])
def test_a_charset_that_names_no_usable_text_encoding_is_400(api, world, content_type):
    response = api.client.generic("POST", "/api/v1/prescriptions/", data=b'{"patient": "x"}',
                                  content_type=content_type,
                                  HTTP_AUTHORIZATION=f"Token {world['ours'].tokens['prescriber']}")
    api.last = response
    assert_problem(api, response.status_code, response.json())


@pytest.mark.parametrize("raw, field", [
    ('{"program": "pomalidomide", "first_name": "A\\u0000"}', "first_name"),
    ('{"program": "pomalidomide", "first_\\u0000name": "A"}', "first_name"),
    ('{"program": "pomalidomide", "first_name": ["\\ud800"]}', "first_name[0]"),
    ('{"a": {"b": [1, {"c": "\\udfff"}]}}', "a.b[1].c"),
])
def test_characters_no_column_can_hold_are_400_naming_the_field(api, world, raw, field):
    status, body = api.post("/api/v1/patients/", raw=raw, as_=world["ours"].tokens["prescriber"])
    assert_problem(api, status, body)
    assert [e["field"] for e in body["errors"]] == [field]


def test_characters_no_column_can_hold_in_a_json_field_are_400(api, world):
    body = {"version": "2099.1", "effective_at": (timezone.now() + timedelta(days=1)).isoformat(),
            "parameters": {"x": "\u0000"}, "sources": {}}
    status, problem = api.post("/api/v1/programs/pomalidomide/rule-sets/", body, as_=world["admin"])
    assert_problem(api, status, problem)
    assert problem["errors"][0]["field"] == "parameters.x"

    status, problem = api.post("/api/v1/cds-clients/", raw='{"issuer": "x", "jwk": {"\\ud83d": 1}}',
                               as_=world["admin"])
    assert_problem(api, status, problem)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/xml", "application/problem+json"])
def test_a_body_that_is_not_json_is_415(api, world, content_type):
    response = api.client.generic("POST", "/api/v1/prescriptions/", data=b'{"patient": "x"}',
                                  content_type=content_type,
                                  HTTP_AUTHORIZATION=f"Token {world['ours'].tokens['prescriber']}")
    api.last = response
    assert_problem(api, response.status_code, response.json(), 415)


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "garbage;;q=x"])
def test_an_accept_header_that_allows_no_json_is_406(api, world, accept):
    response = api.client.get("/api/v1/patients/", HTTP_ACCEPT=accept,
                              HTTP_AUTHORIZATION=f"Token {world['ours'].tokens['prescriber']}")
    api.last = response
    assert_problem(api, response.status_code, response.json(), 406)


@pytest.mark.parametrize("raw", ['{"quantity": NaN}', '{"quantity": Infinity}', '{"quantity": -Infinity}'])
def test_numbers_json_does_not_have_are_400(api, world, raw):
    status, body = api.post("/api/v1/prescriptions/", raw=raw, as_=world["ours"].tokens["prescriber"])
    assert_problem(api, status, body)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_body_over_the_size_limit_is_413(api, world):
    raw = json.dumps({"patient": "x" * 2000})
    status, body = api.post("/api/v1/prescriptions/", raw=raw, as_=world["ours"].tokens["prescriber"])
    assert_problem(api, status, body, 413)


# --- Cursors --------------------------------------------------------------------------------------------
def _list_paths(world, api):
    """Every paginated list of the schema, with a path the administrator may read."""
    from drf_spectacular.generators import SchemaGenerator

    ours = world["ours"]
    patient_id = enroll(api, ours.tokens["prescriber"])
    ids = {
        "/api/v1/patients/{id}/": patient_id,
        "/api/v1/prescribers/{id}/": ours.prescriber.pk,
        "/api/v1/pharmacies/{id}/": ours.pharmacy.pk,
        "/api/v1/users/{id}/": world["admin_user"].pk,
    }
    paths = []
    for path, item in SchemaGenerator().get_schema(request=None, public=True)["paths"].items():
        operation = item.get("get")
        if not operation or "cursor" not in {p["name"] for p in operation.get("parameters", [])}:
            continue
        if "application/json" not in operation["responses"]["200"]["content"]:
            continue  # the exports stream every entry: no pages
        if "{id}" in path:
            prefix = path.split("{id}")[0] + "{id}/"
            path = path.replace("{id}", str(ids[prefix]))
        paths.append(path)
    return paths


FORGED = [
    "garbage", "", "%", "\u00fc", "\x00", "a" * 5000,
    base64.b64encode(b"p=not-a-date").decode(), base64.b64encode(b"o=-1&r=2&p=x").decode(),  # DRF's own format
    base64.b64encode(b"p=2026-13-45 99:99:99").decode(), base64.b64encode(b"p=abc").decode(),
    "WzAsIGZhbHNlLCAiMSJd:1vQxyz:abcdefghijklmnopqrstuvwxyz0",  # the signed format, signed by no one
]


def test_a_forged_cursor_is_400_naming_cursor_on_every_list(api, world):
    paths = _list_paths(world, api)
    assert len(paths) >= 15
    for path in paths:
        for cursor in FORGED:
            response = api.client.get(path, {"cursor": cursor}, HTTP_AUTHORIZATION=f"Token {world['admin']}")
            api.last = response
            body = response.json()
            assert_problem(api, response.status_code, body)
            assert [e["field"] for e in body["errors"]] == ["cursor"], (path, cursor)


def _pages(api, path, token):
    status, page = api.get(path, as_=token)
    assert status == 200 and page["next"], page
    return page


def test_a_cursor_is_good_for_its_own_list_only_and_cannot_be_changed(api, world):
    token = world["ours"].tokens["prescriber"]
    for _ in range(3):
        patient_id = ready_frp_patient(api, token)
        prescribe(api, token, patient_id)
    page = _pages(api, "/api/v1/patients/?page_size=1", token)
    cursor = page["next"].split("cursor=")[1].split("&")[0]

    # followed as given: the next page
    status, second = api.get(page["next"].replace("http://testserver", ""), as_=token)
    assert status == 200 and second["results"] and second["previous"]
    # carried to another list
    status, body = api.get(f"/api/v1/prescriptions/?page_size=1&cursor={cursor}", as_=token)
    assert_problem(api, status, body)
    assert body["errors"][0]["field"] == "cursor"
    # one character changed
    changed = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")
    status, body = api.get(f"/api/v1/patients/?page_size=1&cursor={changed}", as_=token)
    assert_problem(api, status, body)


def test_an_invalid_page_size_falls_back_to_the_default(api, world):
    token = world["ours"].tokens["prescriber"]
    enroll(api, token)
    for size in ("0", "-1", "abc", "\x00", "99999999999999999999"):
        response = api.client.get("/api/v1/patients/", {"page_size": size}, HTTP_AUTHORIZATION=f"Token {token}")
        assert response.status_code == 200, (size, response.content)
