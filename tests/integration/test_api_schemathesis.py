"""A bounded schemathesis run against the OpenAPI document: no generated request may get a 5xx.

Real uvicorn server and PostgreSQL database of this module's own. About 50 examples per operation
(about 20 s here); raise BOUNCEPROC_SCHEMATHESIS_EXAMPLES for a longer hunt.
"""
from __future__ import annotations

import os
import uuid

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, settings as hsettings  # noqa: E402
from test_api_support import admin_key, serve_api  # noqa: E402

EXAMPLES = int(os.environ.get("BOUNCEPROC_SCHEMATHESIS_EXAMPLES", "50"))


@pytest.fixture(scope="module")
def live_api(pg_template, tmp_path_factory):
    from bounceproc.config import load_settings
    conn, template, created = pg_template
    name = f"bp_st_{uuid.uuid4().hex[:10]}"
    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    created.append(name)
    base_url = os.environ.get("BOUNCEPROC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]
    url = base_url.replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    settings = load_settings(database_url=url, data_dir=str(tmp_path_factory.mktemp("st")),
                             secret_key="schemathesis", webhook_allow=())
    with serve_api(settings) as base:
        yield base, admin_key(settings)


@pytest.fixture(scope="module")
def api_schema(live_api):
    base, _ = live_api
    from bounceproc.entrypoints.http.app import OPENAPI_PATH
    import json
    schema = schemathesis.openapi.from_dict(json.loads(OPENAPI_PATH.read_text()))
    schema.config.update(base_url=base)
    return schema


def test_no_generated_request_gets_a_server_error(api_schema, live_api):
    from hypothesis import given
    _, key = live_api
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @hsettings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
                   suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            if case.path.startswith("/v1/"):
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
            response = case.call(timeout=30)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                f"{response.text[:300]}")

        run()
    assert operations >= 20
    assert failures == [], "\n".join(failures[:20])
