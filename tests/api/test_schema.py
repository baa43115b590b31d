"""The OpenAPI schema clients generate their code from: valid, and true to what the views answer."""

import inspect

import pytest
from django.urls import Resolver404, resolve
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

PROBLEM = "application/problem+json"
ERRORS_OF_EVERY_OPERATION = {"401", "403", "406", "503"}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def _view_method(path, method):
    """The view function that serves `method` on the schema's `path` (path parameters filled in)."""
    concrete = path.replace("{slug}", "pomalidomide").replace("{rda_number}", "R0000000000")
    try:
        match = resolve(concrete.replace("{id}", "00000000-0000-0000-0000-000000000000"))
    except Resolver404:
        match = resolve(concrete.replace("{id}", "1"))
    view_class = match.func.view_class
    return getattr(view_class, method.lower())


def _resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_the_schema_is_valid_openapi(schema):
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")


def test_it_is_served_without_a_key(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/v1/patients/" in response.json()["paths"]


def test_every_paginated_list_documents_its_page_and_parameters(schema):
    """A GET documents `cursor`, `page_size` and `{next, previous, results}` exactly when its view answers a
    cursor page (`ApiView.paginated`)."""
    paginated = set()
    for path, method, operation in _operations(schema):
        if method != "GET":
            continue
        json_body = operation["responses"]["200"]["content"].get("application/json", {"schema": {}})
        page = _resolve(schema, json_body["schema"])
        parameters = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
        # The exports take the list's filters, `cursor` and `page_size` among them, and stream every entry.
        documented = "cursor" in parameters and "application/json" in operation["responses"]["200"]["content"]
        answers_a_page = "self.paginated(" in inspect.getsource(_view_method(path, method))
        assert documented == answers_a_page, path
        if not documented:
            continue
        paginated.add(path)
        assert parameters["page_size"]["schema"]["type"] == "integer", path
        assert parameters["cursor"]["schema"]["type"] == "string", path
        assert page["type"] == "object" and set(page["required"]) == {"next", "previous", "results"}, path
        assert page["properties"]["next"]["nullable"] and page["properties"]["previous"]["nullable"], path
        assert page["properties"]["results"]["type"] == "array", path
        assert "400" in operation["responses"], path  # a forged cursor
    assert len(paginated) >= 15


def test_the_programs_list_is_one_page_without_a_cursor(schema):
    operation = schema["paths"]["/api/v1/programs/"]["get"]
    page = _resolve(schema, operation["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(page["properties"]) == {"results", "next"}
    assert not [p for p in operation.get("parameters", []) if p["name"] in ("cursor", "page_size")]


def test_every_operation_documents_its_errors_as_problems(schema):
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        assert ERRORS_OF_EVERY_OPERATION <= set(responses), (method, path)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert PROBLEM in response["content"], (method, path, status)
                assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
        if "{" in path:
            assert "404" in responses, (method, path)
        if method == "POST":
            assert {"409", "422"} <= set(responses), (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= set(responses), (method, path)
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert "errors" in problem["properties"]


def test_a_denied_decision_and_a_refused_request_are_both_documented_as_422(schema):
    for path in ("/api/v1/prescriptions/", "/api/v1/dispense-authorizations/"):
        content = schema["paths"][path]["post"]["responses"]["422"]["content"]
        assert set(content) == {"application/json", PROBLEM}
        decision = _resolve(schema, content["application/json"]["schema"])
        assert {"decision_id", "status", "checks", "rule_set"} <= set(decision["properties"])


def test_the_request_limit_is_documented_where_it_applies(schema):
    limited = {(path, method) for path, method, operation in _operations(schema) if "429" in operation["responses"]}
    assert limited == {("/api/v1/dispense-authorizations/", "POST")}
    headers = schema["paths"]["/api/v1/dispense-authorizations/"]["post"]["responses"]["429"]["headers"]
    assert "Retry-After" in headers


def test_every_post_that_honours_idempotency_keys_documents_the_header(schema):
    for path, method, operation in _operations(schema):
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        honours = method == "POST" and "idempotent(" in inspect.getsource(_view_method(path, method))
        assert ("Idempotency-Key" in headers) == honours, (method, path)
        if honours:
            assert not headers["Idempotency-Key"].get("required")
            assert headers["Idempotency-Key"]["schema"]["pattern"]
    for decision in ("/api/v1/prescriptions/", "/api/v1/dispense-authorizations/", "/api/v1/patients/"):
        assert "Idempotency-Key" in {p["name"] for p in schema["paths"][decision]["post"]["parameters"]}
