"""The OpenAPI document describes every /api route and method, and nothing that does not exist."""

from __future__ import annotations

import re

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def app_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes |= {(path, method.lower()) for method in rule.methods - IGNORED_METHODS}
    return routes


def document_routes(doc) -> set[tuple[str, str]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return {(path, method) for path, item in doc["paths"].items() for method in item if method in methods}


def test_every_api_route_is_documented_and_vice_versa(app):
    doc = app.test_client().get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert app_routes(app) == document_routes(doc)


def test_path_parameters_are_declared_and_refs_resolve(app):
    doc = app.test_client().get("/api/openapi.json").get_json()
    for path, item in doc["paths"].items():
        declared = {p["name"] for p in item.get("parameters", [])}
        assert set(re.findall(r"{(\w+)}", path)) == declared, path
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["responses"], (path, method)
    schemas = doc["components"]["schemas"]
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', __import__("json").dumps(doc)))
    assert refs and refs <= set(schemas)


def test_the_upload_documents_its_all_or_nothing_rule(app):
    doc = app.test_client().get("/api/openapi.json").get_json()
    description = doc["paths"]["/api/jobs"]["post"]["description"]
    assert "All or nothing" in description and "nothing is stored" in description


def test_operations_open_to_anyone_declare_no_security(app):
    doc = app.test_client().get("/api/openapi.json").get_json()
    assert doc["paths"]["/api/shared/{token}"]["get"]["security"] == []
    assert doc["paths"]["/api/status"]["get"]["security"] == []
    assert "security" not in doc["paths"]["/api/jobs"]["post"]  # the document's default: cookie or bearer
    assert app.test_client().get("/api/status").status_code == 200  # and indeed needs nothing
