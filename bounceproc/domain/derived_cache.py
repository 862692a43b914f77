"""What the engine derives from packaged patterns, kept between processes as JSON files.

Domain layer: stdlib only, no I/O beyond its own cache directory.
`bounceproc classify FILE` is a whole process for one message: reading the rules' TOML, working out
the engine's plan and the anchors of the large alternations would be most of its start-up. Each
is kept in `$BOUNCEPROC_CACHE_DIR`, else `$XDG_CACHE_HOME/bounceproc`, else `~/.cache/bounceproc`,
with the exact text it was derived from; a file is used only while that text is unchanged.
Any problem with the directory (absent, unwritable, a torn or foreign file) costs only the time
to derive the data again.
"""
from __future__ import annotations

import json
import os
import zlib


def cache_dir() -> str:
    return os.environ.get("BOUNCEPROC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "bounceproc")


def code_stamp(path: str) -> str:
    """The size and mtime of the module at `path` and the Python running it, for a `source` that
    must change when the code deriving from it does ("" when the module cannot be read)."""
    import sys
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{st.st_size} {st.st_mtime_ns} {sys.version}"


def write(path: str, data: dict) -> None:
    """Write `data` to `path` atomically (a reader sees the old file or the new one, never half)."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass


def derived(kind: str, source: str, derive):
    """`derive()`, or what it returned for the same `source` text in an earlier process.

    `source` must hold everything the result depends on (the patterns, and a version of the code
    that derives from them); the file name is only a hash of it, the full text inside must match."""
    path = os.path.join(cache_dir(), f"{kind}-{zlib.crc32(source.encode()):08x}-{len(source)}.json")
    try:
        with open(path, encoding="utf-8") as fh:
            cached = json.load(fh)
        if cached["source"] == source:
            return cached["data"]
    except (OSError, TypeError, ValueError, KeyError):
        pass
    data = derive()
    write(path, {"source": source, "data": data})
    return data
