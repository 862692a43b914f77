"""/v1/imports: CSV import of suppressions as a background job (202 + job resource).

Adapter layer. The upload (CSV with a header row: `address` required; `reason`, `scope`,
`created_at`, `note` optional) is stored in `import_jobs` and processed after the response:
in-process in the embedded default, by the `bounceproc.run_import` task with a broker. Rows are
applied in transactions of IMPORT_CHUNK through the same path as the batch endpoint; a bad row
is counted and reported (the first MAX_ERRORS), never stops the rest.

Resumable (issue 13, item 6): each chunk commits together with the job's counts and errors, so
`total` is always the number of data rows applied. A job interrupted by a restart (kill -9, or
SIGTERM, which stops it between two chunks) stays "running"; `ImportRunner`, which runs jobs on
its own thread in `bounceproc serve` (embedded), picks every unfinished job up again at start and
skips the rows already applied: a resumed job applies each row once.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import queue
import secrets
import threading
from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Request
from sqlalchemy import insert, select, update

from bounceproc import bootstrap
from bounceproc.entrypoints.http.common import (
    ApiContext, ctx, json_response, parse_scope, problem_responses, require, rfc3339,
)
from bounceproc.entrypoints.http.idempotency import run_once
from bounceproc.entrypoints.http.models import REASONS, ImportJob
from bounceproc.entrypoints.http.problems import MAX_UPLOAD_BYTES, Problem
from bounceproc.entrypoints.http.suppressions import apply_item
from bounceproc.storage.api_keys import ApiKey
from bounceproc.storage.api_tables import import_jobs
from bounceproc.config import Settings

log = logging.getLogger("bounceproc.imports")
router = APIRouter(prefix="/v1", tags=["imports"])
Ctx = Annotated[ApiContext, Depends(ctx)]
IMPORT_CHUNK = 500
MAX_ERRORS = 100
MAX_ROWS = 1_000_000
CLI_ACTOR = "cli"        # the actor of `bounceproc suppressions import`'s jobs (an API key's: "api:<key id>")


def job_origin(actor: str) -> str:
    """The origin a job's suppressions record: `operator` for the command line's (as `bounceproc
    suppressions add` records), `api` for an API key's. Derived from the stored actor, so a CLI
    job that `bounceproc serve` resumes after an interruption keeps its origin."""
    return "operator" if actor == CLI_ACTOR else "api"


def _job(row) -> dict:
    return {"id": row["job_id"], "state": row["state"], "action": row["action"],
            "default_scope": row["default_scope"], "total": row["total"], "changed": row["changed"],
            "unchanged": row["unchanged"], "failed": row["failed"], "errors": row["errors"] or [],
            "created_at": rfc3339(row["created_at"]), "finished_at": rfc3339(row["finished_at"])}


async def _upload(request: Request) -> bytes:
    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_part_size=MAX_UPLOAD_BYTES)
        part = form.get("file")
        if part is None or isinstance(part, str):
            raise Problem(422, "the multipart upload needs a `file` part with the CSV", slug="invalid-upload",
                          errors=[{"field": "file", "message": "missing"}])
        return await part.read()
    if ctype.startswith(("text/csv", "text/plain", "application/csv", "application/octet-stream")):
        return await request.body()
    raise Problem(415, "send the CSV as text/csv or as a multipart `file` part", slug="unsupported-media-type")


@router.post("/imports", status_code=202,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"}},
                 "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                     "file": {"type": "string", "format": "binary"}}}}}}},
             responses={202: {"model": ImportJob}, **problem_responses(400, 401, 403, 413, 415, 422)})
async def create_import(c: Ctx, key: Annotated[ApiKey, Depends(require("suppressions:write"))],
                        request: Request, background: BackgroundTasks,
                        action: Literal["add", "remove"] = "add", scope: str = Query("global", max_length=300),
                        idempotency_key: Annotated[str | None, Header(max_length=255)] = None):
    """Upload a CSV (`address,reason,scope,created_at,note`, header row required); the job runs
    in the background. Poll GET /v1/imports/{id}."""
    default_scope = parse_scope(scope)
    data = await _upload(request)
    header_columns(data)
    job_id = "imp_" + secrets.token_hex(10)

    def write():
        row = create_job(c.engine, job_id, action, default_scope, key.actor, data)
        if c.settings.embedded and c.imports is not None:
            c.imports.submit(job_id)              # `bounceproc serve`: the import thread
        elif c.settings.embedded:
            background.add_task(run_import, c.settings, job_id, c.kick_webhooks)
        else:
            bootstrap.celery_app(c.settings).send_task("bounceproc.run_import", args=[job_id],
                                                       queue=c.settings.queue, retry=False)
        return 202, _job(row)

    from starlette.concurrency import run_in_threadpool
    request_id = f"import:{action}:{default_scope}:" + hashlib.sha256(data).hexdigest()
    return await run_in_threadpool(run_once, c, key, idempotency_key, request_id, write)


def create_job(engine, job_id: str, action: str, default_scope: str, actor: str, data: bytes) -> dict:
    """A queued import job holding the upload (the API's and `bounceproc suppressions import`'s)."""
    with engine.begin() as conn:
        conn.execute(insert(import_jobs), {"job_id": job_id, "state": "queued", "action": action,
                                           "default_scope": default_scope, "actor": actor,
                                           "payload": data, "created_at": datetime.now(timezone.utc), "errors": []})
        return conn.execute(select(import_jobs).where(import_jobs.c.job_id == job_id)).mappings().one()


def job_state(engine, job_id: str) -> dict:
    with engine.connect() as conn:
        return _job(conn.execute(select(import_jobs).where(import_jobs.c.job_id == job_id)).mappings().one())


def header_columns(data: bytes) -> list[str]:
    try:
        first = data[:65536].decode("utf-8-sig").splitlines()[0] if data.strip() else ""
    except UnicodeDecodeError as exc:
        raise Problem(422, "the CSV is not UTF-8", slug="invalid-csv") from exc
    cols = [c.strip().lower() for c in next(csv.reader([first]), [])]
    if "address" not in cols:
        raise Problem(422, "the CSV needs a header row with an `address` column", slug="invalid-csv",
                      errors=[{"field": "file", "message": "no address column"}])
    return cols


@router.get("/imports/{job_id}", responses={200: {"model": ImportJob}, **problem_responses(401, 403, 404)})
def get_import(c: Ctx, key: Annotated[ApiKey, Depends(require("suppressions:read"))], job_id: str):
    with c.engine.connect() as conn:
        row = conn.execute(select(import_jobs).where(import_jobs.c.job_id == job_id)).mappings().first()
    if row is None:
        raise Problem(404, f"no import job {job_id}", slug="no-such-import")
    return json_response(_job(row))


def unfinished_imports(settings: Settings) -> list[str]:
    """Jobs queued or interrupted while running (oldest first): what a restart must resume."""
    with bootstrap.engine(settings).connect() as conn:
        return list(conn.execute(select(import_jobs.c.job_id).where(import_jobs.c.state.in_(("queued", "running")))
                                 .order_by(import_jobs.c.id)).scalars())


def run_import(settings: Settings, job_id: str, kick=lambda: None, stop: threading.Event | None = None,
               progress=None) -> None:
    """Process a queued import job to the end, or resume an interrupted one after the rows it
    already applied (their count is committed with each chunk). With `stop` set, it returns
    between two chunks and leaves the job "running" for the next start to resume. `progress`
    (rows applied so far) is called after each chunk."""
    eng = bootstrap.engine(settings)
    with eng.begin() as conn:
        row = conn.execute(select(import_jobs).where(import_jobs.c.job_id == job_id)).mappings().first()
        if row is None or row["state"] not in ("queued", "running"):
            return
        conn.execute(update(import_jobs).where(import_jobs.c.id == row["id"]).values(state="running"))
    counts = {k: int(row[k] or 0) for k in ("total", "changed", "unchanged", "failed")}
    errors: list[dict] = list(row["errors"] or [])
    applied = counts["total"]                 # data rows applied before an interruption
    try:
        text = row["payload"].decode("utf-8-sig", errors="replace").replace("\x00", "")
        reader = csv.DictReader(io.StringIO(text))
        reader.fieldnames = [f.strip().lower() for f in reader.fieldnames or []]
        chunk: list[tuple[int, dict]] = []
        for line_no, rec in enumerate(reader, start=2):
            if line_no - 2 < applied:
                continue
            if line_no > MAX_ROWS + 1:
                errors.append({"line": line_no, "message": f"stopped after {MAX_ROWS} rows"})
                break
            chunk.append((line_no, rec))
            if len(chunk) >= IMPORT_CHUNK:
                _apply_chunk(eng, row, chunk, counts, errors, progress)
                chunk = []
                if stop is not None and stop.is_set():
                    log.info("import %s interrupted after %d rows; it resumes at the next start", job_id, counts["total"])
                    return
        _apply_chunk(eng, row, chunk, counts, errors, progress)
        state = "done"
    except (csv.Error, UnicodeError) as exc:
        errors.append({"line": None, "message": f"the CSV could not be read: {exc}"})
        state = "failed"
    except Exception as exc:  # the job must end in a state, never stay "running"
        log.exception("import %s failed", job_id)
        errors.append({"line": None, "message": f"the import stopped: {type(exc).__name__}"})
        state = "failed"
    with eng.begin() as conn:
        conn.execute(update(import_jobs).where(import_jobs.c.id == row["id"]).values(
            state=state, payload=None, errors=errors[:MAX_ERRORS], finished_at=datetime.now(timezone.utc),
            **counts))
    kick()


def _apply_chunk(eng, job, chunk, counts: dict, errors: list, progress=None) -> None:
    """Apply rows and record the job's counts and errors in ONE transaction (the resume point)."""
    if not chunk:
        return
    with eng.begin() as conn:
        for line_no, rec in chunk:
            counts["total"] += 1
            reason = (rec.get("reason") or "").strip() or "import"
            if reason not in REASONS:
                result = {"result": "failed", "message": f"unknown reason {reason!r}"}
            else:
                result = apply_item(conn, job["actor"], job["action"], (rec.get("address") or ""),
                                    (rec.get("scope") or "").strip() or job["default_scope"], reason,
                                    (rec.get("note") or "").strip()[:2000], None, origin=job_origin(job["actor"]))
            if result["result"] == "failed":
                counts["failed"] += 1
                if len(errors) < MAX_ERRORS:
                    errors.append({"line": line_no, "message": result["message"]})
            elif result["result"] == "unchanged":
                counts["unchanged"] += 1
            else:
                counts["changed"] += 1
        conn.execute(update(import_jobs).where(import_jobs.c.id == job["id"]).values(
            errors=errors[:MAX_ERRORS], **counts))
    if progress is not None:
        progress(counts["total"])


class ImportRunner:
    """Runs import jobs one after another on a thread of its own (`bounceproc serve`, embedded).

    Not request background tasks: the server's graceful shutdown waits for those, so a long
    import held SIGTERM for as long as it ran. `start()` queues every unfinished job (resume
    after a restart); `stop()` makes the running job return after its current chunk."""

    def __init__(self, settings: Settings, kick=lambda: None) -> None:
        self.settings, self.kick = settings, kick
        self._jobs: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bounceproc-imports", daemon=True)

    def start(self) -> "ImportRunner":
        for job_id in unfinished_imports(self.settings):
            self._jobs.put(job_id)
        self._thread.start()
        return self

    def submit(self, job_id: str) -> None:
        self._jobs.put(job_id)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._jobs.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        for _ in iter(int, 1):                  # until stop(): one job at a time
            job_id = self._jobs.get()
            if job_id is None or self._stop.is_set():
                return
            try:
                run_import(self.settings, job_id, self.kick, self._stop)
            except Exception:  # the job stays queued/running; the next start resumes it
                log.exception("import %s could not run", job_id)
