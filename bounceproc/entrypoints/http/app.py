"""The HTTP application: the /v1 suppression and webhook API and the RFC 8058 unsubscribe pages.

Adapter layer (FastAPI on uvicorn). `create_app(settings)` wires the routers in
bounceproc/entrypoints/http/, problem+json errors (RFC 9457), a request size limit, API-key auth and
the OpenAPI document (served at /openapi.json, kept in the repo as bounceproc/openapi.json;
`python -m bounceproc.entrypoints.http.app` rewrites that file). Nothing connects at import time.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from bounceproc import bootstrap
from bounceproc.entrypoints.http import dashboard, esp, imports, quarantine, suppressions, unsubscribe, webhook_admin
from bounceproc.entrypoints.http.common import ApiContext, json_response
from bounceproc.entrypoints.http.models import Problem as ProblemModel
from bounceproc.entrypoints.http.fast_path import EspFastPath, FastLookup
from bounceproc.entrypoints.http.pg_reads import PgReader
from bounceproc.entrypoints.http.problems import BodyLimit, install
from bounceproc.entrypoints.http.rate_limit import RateLimit
from bounceproc.storage.api_keys import KeyStore
from bounceproc.config import Settings, load_settings

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "openapi.json"
VERSION = "1.0.0"
DESCRIPTION = """Suppression list, recipient events, webhook endpoints and one-click unsubscribe.

Authenticate with `Authorization: Bearer <api key>` (create one with `bounceproc apikey create
--scope SCOPE`). Errors are `application/problem+json` (RFC 9457). Lists use an opaque
`cursor`; pass the `next_cursor` of a page to get the next one."""


def create_app(settings: Settings, kick_webhooks: Callable[[], None] | None = None, import_runner=None) -> FastAPI:
    """The ASGI app for these settings. `kick_webhooks` wakes the webhook sender after a commit
    (default: a `bounceproc.deliver_webhooks` task when a broker is configured); `import_runner` is the
    ImportRunner that runs CSV import jobs (embedded; without one they run as background tasks)."""
    from fastapi.responses import Response

    from bounceproc.entrypoints.http import metrics

    from bounceproc.outbound import webhooks

    reader = PgReader(bootstrap.normalise_db_url(settings.db_url)) if settings.is_postgres else None

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        if reader is not None:
            await reader.aclose()

    # FastAPI's native OpenTelemetry (recent releases) looks the global providers up on every
    # request; bounceproc configures none, so it is off where the release has it.
    quiet = ({"telemetry": {"tracing": False, "metrics": False, "logs": False}}
             if "telemetry" in inspect.signature(FastAPI).parameters else {})
    app = FastAPI(title="bounceproc API", version=VERSION, description=DESCRIPTION,
                  docs_url=None, redoc_url=None, lifespan=lifespan, **quiet)
    eng = bootstrap.engine(settings)
    app.state.ctx = ApiContext(settings=settings, engine=eng, keys=KeyStore(eng),
                               kick_webhooks=kick_webhooks or webhooks.kicker(settings), reader=reader,
                               imports=import_runner)
    app.state.unsubscribe_limits = unsubscribe.Limits(settings.unsubscribe_per_ip_per_minute)
    install(app)
    app.add_middleware(EspFastPath, state=app.state)       # inside BodyLimit: the same 413s
    app.add_middleware(BodyLimit)
    if reader is not None:
        app.add_middleware(FastLookup, context=app.state.ctx)
    app.add_middleware(RateLimit, per_minute=settings.api_rate_limit_per_minute, keys=app.state.ctx.keys)
    for module in (suppressions, imports, webhook_admin, quarantine, unsubscribe, esp, dashboard):
        app.include_router(module.router)

    @app.get("/healthz", tags=["health"], include_in_schema=False)
    def healthz() -> dict:
        """Liveness: the process answers (nothing else is checked)."""
        return {"ok": True}

    @app.get("/readyz", tags=["health"], include_in_schema=False)
    def readyz() -> Response:
        """Readiness: the database answers, its schema is at this version's head, the broker answers."""
        from bounceproc.entrypoints.http import health
        ready, checks = health.readiness(settings)
        return json_response({"ready": ready, "checks": checks}, 200 if ready else 503)

    install_offline_docs(app)

    # Prometheus: counts only (no addresses), read from the database on each scrape, no key (bind
    # the API to an internal address or keep /metrics behind your proxy). The dashboard is in
    # dashboard.py, behind a key or dashboard_allow_cidrs.
    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        with eng.connect() as conn:
            return Response(metrics.render_metrics(conn), media_type=metrics.CONTENT_TYPE)

    def openapi() -> dict:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = \
                ProblemModel.model_json_schema()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app


def install_offline_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) with its assets served from the `swagger-ui-bundle` package, so that it
    works with no internet access (FastAPI's documented self-hosting of the docs assets)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="bounceproc API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def openapi_document() -> str:
    """The OpenAPI document as it is kept in the repo (stable key order, trailing newline)."""
    settings = load_settings(database_url="sqlite://", secret_key="openapi")
    return json.dumps(create_app(settings, kick_webhooks=lambda: None).openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OPENAPI_PATH.write_text(openapi_document())
    print(f"wrote {OPENAPI_PATH}", file=sys.stderr)
