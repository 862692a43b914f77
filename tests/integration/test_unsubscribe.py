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


def _click(c, token):
    return c.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click", headers=FORM)


def test_mixed_case_token_suppresses_the_normalised_address(site):
    """Issue 13, item 4: the suppression is stored under the key the API and the check use."""
    from test_api_support import admin_key
    settings, c = site
    expires = datetime.now(timezone.utc) + timedelta(days=30)
    from bounceproc.domain.unsubscribe_token import make_legacy_token
    for to, list_id, token in (
            ("Carol.Mixed@Example.COM", "", make_token(settings.secret(), "Carol.Mixed@Example.COM", "", expires)),
            ("Dan.Old@Example.COM", "news", make_legacy_token(settings.secret(), "Dan.Old@Example.COM", "news", expires))):
        assert _click(c, token).status_code == 200
        key = to.lower()
        assert _scopes(settings, key) == ["list:news" if list_id else "global"]
        assert _scopes(settings, to) == []
        c.headers["Authorization"] = f"Bearer {admin_key(settings)}"
        scope = f"list:{list_id}" if list_id else "global"
        assert c.get(f"/v1/suppressions/{to}", params={"scope": scope}).status_code == 200
        res = c.post("/v1/suppressions/check", json={"addresses": [to], "scope": scope}).json()["results"]
        assert res[0]["suppressed"] is True
        del c.headers["Authorization"]


def test_unsubscribe_after_a_resubscribe_takes_effect(site):
    """Issue 13, item 5: a suppression lifted through the API, then the same link clicked again
    the same day, suppresses again (and a repeated click still records nothing new)."""
    from test_api_support import admin_key
    settings, c = site
    token = _token(settings, to="resub@example.com", list_id="news")
    key = {"Authorization": f"Bearer {admin_key(settings)}"}
    for round_ in range(3):
        assert _click(c, token).status_code == 200
        assert _scopes(settings, "resub@example.com") == ["list:news"], round_
        before = _state(settings)
        assert _click(c, token).status_code == 200          # a double click: nothing new
        assert _state(settings) == before
        r = c.delete("/v1/suppressions/resub@example.com", params={"scope": "list:news", "reason": "re-subscribed"},
                     headers=key)
        assert r.status_code == 200, r.text
        assert _scopes(settings, "resub@example.com") == []
    with bootstrap.engine(settings).connect() as conn:
        n = conn.execute(events.select().where(events.c.recipient == "resub@example.com")).all()
    assert len(n) == 3


def test_other_spellings_of_a_token_are_refused_and_record_nothing(site):
    """Issue 13, item 10: padding, a non-canonical last character or stray characters do not
    make one click into several events."""
    settings, c = site
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    token = None
    for n in range(1, 8):         # a recipient whose token has spare bits in its last character
        token = _token(settings, to=f"{'s' * n}@example.com")
        if len(token) % 4 in (2, 3):
            break
    spare = {2: 15, 3: 3}[len(token) % 4]
    spellings = [token + "=" * (-len(token) % 4), token + "=", token[:-1] + alphabet[alphabet.index(token[-1]) | spare],
                 token[:4] + "%0A" + token[4:], token + "%20"]
    before = _state(settings)
    for other in spellings:
        assert _click(c, other).status_code == 404, other
        assert c.get(f"/u/{other}").status_code == 404
    assert _state(settings) == before
    assert _click(c, token).status_code == 200


def test_tokens_are_opaque_and_old_tokens_still_work(site):
    """Issue 13, item 16: the address cannot be read from a new link; links mailed before
    (version 1 tokens) keep working until they expire."""
    import base64
    from bounceproc.domain.unsubscribe_token import make_legacy_token
    settings, c = site
    expires = datetime.now(timezone.utc) + timedelta(days=3)
    new = make_token(settings.secret(), "opaque.reader@example.com", "news", expires)
    raw = base64.urlsafe_b64decode(new + "=" * (-len(new) % 4))
    assert b"opaque" not in raw and b"example" not in raw and b"news" not in raw
    assert "opaque" not in c.get(f"/u/{new}").text.replace("o***@", "")     # the page masks it too
    old = make_legacy_token(settings.secret(), "legacy@example.com", "news", expires)
    assert _click(c, old).status_code == 200 and _scopes(settings, "legacy@example.com") == ["list:news"]
    expired = make_legacy_token(settings.secret(), "legacy2@example.com", "news",
                                datetime.now(timezone.utc) - timedelta(seconds=1))
    assert _click(c, expired).status_code == 404
    assert _click(c, new).status_code == 200 and _scopes(settings, "opaque.reader@example.com") == ["list:news"]


def test_the_per_ip_limit_is_a_setting(fresh_pg_url, make_settings):
    assert make_settings().unsubscribe_per_ip_per_minute == 600    # big providers click from few IPs
    settings = make_settings(database_url=fresh_pg_url, unsubscribe_per_ip_per_minute=3)
    tokens = [_token(settings, to=f"ip{i}@example.com") for i in range(5)]    # per-token limit not in play
    with serve_api(settings) as base, client(base) as c:
        assert [_click(c, t).status_code for t in tokens] == [200, 200, 200, 429, 429]
    unlimited = make_settings(database_url=fresh_pg_url, unsubscribe_per_ip_per_minute=0)
    with serve_api(unlimited) as base, client(base) as c:
        assert {_click(c, _token(unlimited, to=f"free{i}@example.com")).status_code for i in range(70)} == {200}
