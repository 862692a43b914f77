"""PowerMTA value syntax: durations, rates, sizes, booleans (`powermta.md` §3, "Units").

Domain layer: pure, stdlib only. In: the text of one directive value. Out: seconds, a Rate,
bytes or a bool; ValueError with what was expected otherwise.

- durations `1w2d12h`, `300s`, `10m`; a bare number is seconds.
- rates `N/[M]unit` (unit d|day|h|hr|m|min|s|sec), `unlimited`; `0` means unlimited too
  (PowerMTA documents `0` next to `unlimited` as "no limit").
- sizes `N{b,k,m,g,t}` (`250M`), case-insensitive, powers of 1024.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:\d+[wdhms])+\Z|\d+\Z", re.I)
_DURATION_PART = re.compile(r"(\d+)([wdhms])", re.I)
_RATE_UNITS = {"d": 86400, "day": 86400, "h": 3600, "hr": 3600, "m": 60, "min": 60, "s": 1, "sec": 1}
_RATE = re.compile(r"(\d+)\s*/\s*(\d*)\s*([a-z]+)\Z", re.I)
_SIZE_UNITS = {"b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}
_SIZE = re.compile(r"(\d+)\s*([bkmgt]?)\Z", re.I)
_TRUE = {"yes", "true", "on", "1"}
_FALSE = {"no", "false", "off", "0"}


@dataclass(frozen=True)
class Rate:
    """`count` events per `seconds`; None (see parse_rate) stands for unlimited."""
    count: int
    seconds: float

    @property
    def interval(self) -> float:
        """Seconds between two events at this rate."""
        return self.seconds / self.count

    def __str__(self) -> str:
        return f"{self.count}/{int(self.seconds)}s"


def parse_duration(text: str) -> float:
    t = text.strip()
    if not _DURATION.match(t):
        raise ValueError(f"expected a duration like 10m, 1h30m, 1w2d12h or 300s, got {text!r}")
    if t.isdigit():
        return float(t)
    return float(sum(int(n) * _DURATION_UNITS[u.lower()] for n, u in _DURATION_PART.findall(t)))


def parse_duration_list(text: str) -> tuple[float, ...]:
    """`10m,10m,1h` or `5m 10m 30m` (the seed guide's `retry` form); at most 30 steps."""
    parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    if not parts:
        raise ValueError("expected a list of durations like 10m,10m,1h,4h")
    if len(parts) > 30:
        raise ValueError(f"expected at most 30 retry steps, got {len(parts)}")
    return tuple(parse_duration(p) for p in parts)


def parse_rate(text: str) -> Rate | None:
    t = text.strip().lower()
    if t in ("unlimited", "0"):
        return None
    m = _RATE.match(t)
    if not m or m.group(3) not in _RATE_UNITS or int(m.group(1)) == 0:
        raise ValueError(f"expected a rate like 1000/h, 83/10m or unlimited, got {text!r}")
    mult = int(m.group(2)) if m.group(2) else 1
    return Rate(int(m.group(1)), float(mult * _RATE_UNITS[m.group(3)]))


def parse_size(text: str) -> int:
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"expected a size like 50M, 250k or 1g, got {text!r}")
    return int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()]


def parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in _TRUE or t == "":
        return True  # a bare flag (`always-allow-relaying`) means yes
    if t in _FALSE:
        return False
    raise ValueError(f"expected yes, no, true or false, got {text!r}")


def parse_int(text: str) -> int:
    t = text.strip()
    if not t.isdigit():
        raise ValueError(f"expected a whole number, got {text!r}")
    return int(t)


def format_duration(seconds: float) -> str:
    s = int(seconds)
    if s == 0:
        return "0s"
    out = []
    for unit, size in _DURATION_UNITS.items():
        n, s = divmod(s, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)
