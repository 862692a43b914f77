"""/healthz, /readyz and an offline /docs (issue 14, item 8), over a real uvicorn server."""
from __future__ import annotations

import httpx
from test_api_support import free_port, serve_api

from bounceproc import bootstrap


def test_readyz_checks_database_migrations_and_broker(make_settings, redis_url):
    settings = make_settings()
    bootstrap.migrate(settings)
    with serve_api(settings) as base:
        assert httpx.get(base + "/healthz", trust_env=False).json() == {"ok": True}
        r = httpx.get(base + "/readyz", trust_env=False)
        assert r.status_code == 200
        assert r.json() == {"ready": True, "checks": {"database": "ok", "migrations": "ok",
                                                      "broker": "none (embedded mode)"}}
    with serve_api(make_settings(data_dir=settings.data_dir, broker_url=redis_url)) as base:
        assert httpx.get(base + "/readyz", trust_env=False).json()["checks"]["broker"] == "ok"
    dead = make_settings(data_dir=settings.data_dir, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    with serve_api(dead) as base:
        r = httpx.get(base + "/readyz", trust_env=False)
        assert r.status_code == 503 and r.json()["checks"]["broker"].startswith("cannot reach redis://127.0.0.1:")
    bootstrap.downgrade(settings, "-1")
    with serve_api(settings) as base:
        r = httpx.get(base + "/readyz", trust_env=False)
        assert r.status_code == 503 and "run `bounceproc db upgrade`" in r.json()["checks"]["migrations"]


def test_docs_work_offline(make_settings):
    settings = make_settings()
    bootstrap.migrate(settings)
    with serve_api(settings) as base:
        page = httpx.get(base + "/docs", trust_env=False).text
        assert "/docs-assets/swagger-ui-bundle.js" in page and "/openapi.json" in page
        assert "cdn" not in page.lower() and "https://" not in page.split("<body>")[1]
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
            assert httpx.get(f"{base}/docs-assets/{asset}", trust_env=False).status_code == 200
