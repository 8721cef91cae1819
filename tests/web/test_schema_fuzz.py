"""schemathesis against the OpenAPI document (issue 10, point 8): generated requests to every operation get
no 500 and answers that match the document (status codes, content types, response schemas).

Runs in-process against the WSGI app (SQLite, the queue replaced by a recorder), as a script with a bearer
token: cookie requests would need the CSRF header, which the document describes but a generator cannot guess.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from webtools import QueueRecorder

from backend.settings import Settings
from backend.web import create_app
from backend.web.openapi import openapi_document

CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    data = tmp_path_factory.mktemp("schema-fuzz")
    settings = Settings(data_dir=data, secret_key="fuzz", weights=data / "none.h5", upload_rate_limit="100000 per minute",
                        identity_rate_limit="100000 per minute", address_upload_rate_limit="100000 per minute")  # fmt: skip
    queue = QueueRecorder()
    app = create_app(settings, submit=queue.submit, cancel=queue.cancel)
    token = app.test_client().post("/api/tokens").get_json()["token"]
    yield app, token
    app.extensions["maskweb"].engine.dispose()


schema = schemathesis.openapi.from_dict(openapi_document())  # the document the app serves


@schema.parametrize()
@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_fails_or_breaks_its_documented_contract(case, api):
    app, token = api
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {token}"}, checks=list(CHECKS))
