"""RFC 8058 one-click unsubscribe over HTTP: a POST unsubscribes once, a GET never does, and
forged, expired or other-scope tokens are refused without revealing anything."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from bp_testing import subscribe_webhooks
from test_api_support import client, count, serve_api

from bounceproc import bootstrap
from bounceproc.storage.tables import events, outbox, suppressions
from bounceproc.domain.unsubscribe_token import make_token

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def site(fresh_pg_url, make_settings):
    settings = make_settings(database_url=fresh_pg_url)
    subscribe_webhooks(settings)      # so that changes write outbox rows
    with serve_api(settings) as base, client(base) as c:
        yield settings, c


def _token(settings, to="ann@example.com", list_id="news", days=30):
    return make_token(settings.secret(), to, list_id, datetime.now(timezone.utc) + timedelta(days=days))


def _state(settings):
    return count(settings, suppressions), count(settings, events), count(settings, outbox)


def _scopes(settings, address):
    with bootstrap.engine(settings).connect() as conn:
        return sorted(r.scope for r in conn.execute(suppressions.select().where(suppressions.c.address == address)))


def test_post_unsubscribes_once_and_repeat_is_harmless(site):
    settings, c = site
    token = _token(settings)
    r = c.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click", headers=FORM)
    assert r.status_code == 200 and "location" not in r.headers
    assert _scopes(settings, "ann@example.com") == ["list:news"]
    with bootstrap.engine(settings).connect() as conn:
        rows = conn.execute(outbox.select()).mappings().all()
    assert sorted(row["type"] for row in rows) == ["recipient.suppressed", "recipient.unsubscribed"]
    unsub = next(row for row in rows if row["type"] == "recipient.unsubscribed")
    assert '"method":"one_click"' in unsub["payload"] and '"scope":"list:news"' in unsub["payload"]
    before = _state(settings)
    for _ in range(3):
        assert c.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click", headers=FORM).status_code == 200
    assert _state(settings) == before


@pytest.mark.parametrize("body,headers", [
    (b"List-Unsubscribe=One-Click\r\n", FORM),
    (b"  List-Unsubscribe=One-Click  ", FORM),
    (b"List-Unsubscribe=One-Click", {}),
    (None, None),   # multipart/form-data, as in the RFC's examples
])
def test_both_form_encodings_and_whitespace(site, body, headers):
    settings, c = site
    token = _token(settings, to="mp@example.com", list_id="")
    if body is None:
        r = c.post(f"/u/{token}", files={"List-Unsubscribe": (None, "One-Click")})
    else:
        r = c.post(f"/u/{token}", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert _scopes(settings, "mp@example.com") == ["global"]


def test_get_shows_a_page_and_changes_nothing(site):
    settings, c = site
    token = _token(settings)
    before = _state(settings)
    for _ in range(3):
        r = c.get(f"/u/{token}")
        assert r.status_code == 200 and "<form method=\"post\"" in r.text and "a***@example.com" in r.text
        assert r.headers["cache-control"] == "no-store"
    c.head(f"/u/{token}")
    assert _state(settings) == before


def test_forged_expired_and_bodiless_requests_change_nothing(site):
    settings, c = site
    good = _token(settings)
    forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    other_secret = make_token("not-the-server-secret", "ann@example.com", "news",
                              datetime.now(timezone.utc) + timedelta(days=1))
    expired = _token(settings, days=-1)
    before = _state(settings)
    for token in (forged, other_secret, expired, "x", "A" * 5000):
        r = c.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click", headers=FORM)
        assert r.status_code == 404 and "location" not in r.headers
        assert c.get(f"/u/{token}").status_code == 404
    # a genuine token for an address that does not exist answers exactly like a good one
    assert c.post(f"/u/{_token(settings, to='ghost@example.com')}", content=b"List-Unsubscribe=One-Click",
                  headers=FORM).status_code == 200
    assert c.post(f"/u/{good}", content=b"", headers=FORM).status_code == 400
    assert c.post(f"/u/{good}", content=b"List-Unsubscribe=Maybe", headers=FORM).status_code == 400
    after = _state(settings)
    assert after[0] == before[0] + 1            # only ghost@, nothing from the refused requests
    assert _scopes(settings, "ann@example.com") == []


def test_token_for_one_list_does_not_touch_another(site):
    settings, c = site
    c.post(f"/u/{_token(settings, list_id='promo')}", content=b"List-Unsubscribe=One-Click", headers=FORM)
    assert _scopes(settings, "ann@example.com") == ["list:promo"]


def test_cli_prints_a_working_header_pair(site, tmp_path):
    settings, c = site
    env_settings = {"BOUNCEPROC_DATABASE_URL": settings.db_url, "BOUNCEPROC_SECRET_KEY": settings.secret_key,
                    "BOUNCEPROC_PUBLIC_URL": "https://unsub.example.net", "BOUNCEPROC_DATA_DIR": str(tmp_path)}
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOUNCEPROC_")} | env_settings
    out = subprocess.run([sys.executable, "-m", "bounceproc.entrypoints.cli.main", "unsubscribe-url", "--to", "Cli@Example.COM",
                          "--list", "news"], env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert lines["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = lines["List-Unsubscribe"].strip("<>")
    assert url.startswith("https://unsub.example.net/u/")
    path = url[len("https://unsub.example.net"):]
    assert c.post(path, content=b"List-Unsubscribe=One-Click", headers=FORM).status_code == 200
    assert _scopes(settings, "cli@example.com") == ["list:news"]


def test_posts_are_rate_limited_per_token(site):
    settings, c = site
    token = _token(settings, to="rl@example.com")
    codes = [c.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click", headers=FORM).status_code
             for _ in range(12)]
    assert codes[:10] == [200] * 10 and codes[10:] == [429, 429]
    r = c.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click", headers=FORM)
    assert r.headers["retry-after"] == "60" and "location" not in r.headers
