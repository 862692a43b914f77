"""Record a one-click unsubscribe (RFC 8058) so that every deliberate click takes effect.

Application layer: the HTTP route (entrypoints/http/unsubscribe.py) reads the token, this records
the `unsubscribed` event through service.record_events, which suppresses in the token's scope.

The event key is derived from what the token says (UnsubscribeClaims.identity: recipient, list
and expiry, not the token's spelling or version) and from the last lift of the suppression in
that scope (the id of the latest `deleted`/`expired` history row, 0 if there is none). So a
repeated click (a double click, a client retrying, a scanner that POSTs) records nothing new,
while a click after the sender lifted the suppression (a re-subscribe through the API or CLI) is
a new event and suppresses again (issue 13, item 5). Two clicks racing get the same key, and the
unique event key keeps one.
"""
from __future__ import annotations

from datetime import datetime

from bounceproc.app import service
from bounceproc.config import Settings
from bounceproc.domain.address import normalise_address
from bounceproc.domain.events import Event, event_key
from bounceproc.domain.unsubscribe_token import UnsubscribeClaims
from bounceproc.storage.suppression_store import last_lift_id


def record_one_click(conn, claims: UnsubscribeClaims, settings: Settings, now: datetime) -> bool:
    """Record the click in the caller's transaction; True if it was a new event."""
    recipient = normalise_address(claims.recipient)
    lifted = last_lift_id(conn, recipient, claims.scope)
    ev = Event(event_key=event_key("one-click", claims.identity, lifted), type="unsubscribed",
               recipient=recipient, occurred_at=now, source="unsubscribe", list_id=claims.list_id,
               attrs={"method": "one_click"})
    return service.record_events(conn, [ev], settings).new_events > 0
