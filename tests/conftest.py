"""Shared test fixtures: real PostgreSQL databases, SQLite files, Redis, and real Celery workers.

PostgreSQL and Redis on 127.0.0.1 are used whenever they answer. When one does not, tests that
need it skip with the reason - unless BOUNCEPROC_REQUIRE_SERVICES=1 (CI), where they fail.
Every session gets its own databases (created from a migrated template, dropped at the end) and
its own Celery queue names, so several test runs can share one machine.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("BOUNCEPROC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BOUNCEPROC_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRE = os.environ.get("BOUNCEPROC_REQUIRE_SERVICES") == "1"
SESSION = uuid.uuid4().hex[:8]
CORPUS = ROOT.parent / "shared" / "corpus"
# A process the tests start without a data dir of its own must not use (or migrate) the user's
# per-user one, $XDG_DATA_HOME/bounceproc, which another checkout on this machine may share.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix=f"bp-test-xdg-{SESSION}-")
atexit.register(shutil.rmtree, os.environ["XDG_DATA_HOME"], True)

from bp_testing import CeleryWorker, bin_path, drop_redis_queue, settings_env  # noqa: E402,F401 - re-exported for tests


def _unavailable(what: str, why: str):
    msg = f"{what} is not reachable ({why})"
    if REQUIRE:
        pytest.fail(msg + " and BOUNCEPROC_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(msg + "; set it up to run this test")


def _pg_admin():
    import psycopg
    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)


def _pg_url(dbname: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+psycopg://", 1) + "/" + dbname


@pytest.fixture(scope="session")
def pg_template():
    try:
        conn = _pg_admin()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        _unavailable("PostgreSQL", str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__)
    name = f"bp_tmpl_{SESSION}"
    conn.execute(f'CREATE DATABASE "{name}"')
    from bounceproc import bootstrap
    from bounceproc.config import load_settings
    settings = load_settings(database_url=_pg_url(name), data_dir=str(ROOT / ".pytest_cache"))
    bootstrap.migrate(settings)
    bootstrap.engine(settings).dispose()
    bootstrap._engines.pop(bootstrap.normalise_db_url(settings.db_url), None)
    created: list[str] = []
    yield conn, name, created
    bootstrap.dispose_engines()
    for db in created + [name]:
        with contextlib.suppress(Exception):
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    conn.close()


def _new_pg_db(pg_template) -> str:
    conn, tmpl, created = pg_template
    name = f"bp_{SESSION}_{uuid.uuid4().hex[:8]}"
    for attempt in range(20):
        try:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{tmpl}"')
            break
        except Exception:  # template busy for a moment
            if attempt == 19:
                raise
            time.sleep(0.2)
    created.append(name)
    return _pg_url(name)


@pytest.fixture(scope="session")
def pg_url(pg_template) -> str:
    """One migrated PostgreSQL database shared by the session (tests must not assume it is empty)."""
    return _new_pg_db(pg_template)


@pytest.fixture
def another_pg_url(pg_template) -> str:
    """A second migrated, empty PostgreSQL database of this test's own (e.g. another deployment)."""
    return _new_pg_db(pg_template)


@pytest.fixture
def fresh_pg_url(pg_template) -> str:
    """A migrated, empty PostgreSQL database of this test's own."""
    return _new_pg_db(pg_template)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    from bounceproc import bootstrap
    from bounceproc.config import load_settings
    url = f"sqlite:///{tmp_path / 'bounceproc.db'}"
    bootstrap.migrate(load_settings(database_url=url, data_dir=str(tmp_path)))
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        import redis
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable("Redis", str(exc) or type(exc).__name__)
    return REDIS_URL


@pytest.fixture
def make_settings(tmp_path):
    """make_settings(**overrides) -> Settings with a private data dir and a unique queue name."""
    from bounceproc.config import load_settings

    made = []

    def make(**overrides):
        overrides.setdefault("data_dir", str(tmp_path / "data"))
        overrides.setdefault("queue", f"bp-test-{SESSION}-{uuid.uuid4().hex[:6]}")
        overrides.setdefault("secret_key", "test-secret-" + SESSION)
        settings = load_settings(**overrides)
        made.append(settings)
        return settings
    yield make
    for s in made:                      # what the test's queues left in Redis
        drop_redis_queue(s.broker_url, s.queue)


@pytest.fixture
def celery_worker():
    """celery_worker(settings, beat=False) -> context manager yielding a running CeleryWorker."""
    started: list[CeleryWorker] = []

    @contextlib.contextmanager
    def start(settings, beat: bool = False, extra_env: dict | None = None):
        w = CeleryWorker(settings, beat=beat, extra_env=extra_env)
        started.append(w)
        try:
            yield w
        finally:
            w.stop()

    yield start
    for w in started:
        w.stop()


def pytest_terminal_summary(terminalreporter, config):
    """The random order's seed, also under -q (pytest-randomly prints it only in the header)."""
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int) and config.pluginmanager.has_plugin("randomly"):
        terminalreporter.write_line(f"random order: --randomly-seed={seed} replays it")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With `CI` set, a test skipped because the labelled corpus is absent fails instead: CI must
    run the corpus tests, and a moved ../shared/corpus must not turn them into silent skips."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") and not (CORPUS / "labels.json").exists():
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if "corpus" in reason:
            report.outcome = "failed"
            report.longrepr = f"CI is set and the corpus is absent at {CORPUS}: {reason}"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not (CORPUS / "labels.json").exists():
        pytest.skip(f"the labelled corpus is not at {CORPUS} (it ships beside the project as ../shared)")
    return CORPUS
