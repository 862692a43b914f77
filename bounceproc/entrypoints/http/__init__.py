"""The HTTP API under /v1 and the one-click unsubscribe pages, as FastAPI routers.

Adapter layer: translates HTTP to calls of bounceproc.app.service and SQL reads; holds no rules.
`bounceproc.entrypoints.http.app.create_app(settings)` assembles these modules.
"""
