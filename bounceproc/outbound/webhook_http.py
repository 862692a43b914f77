"""A small keep-alive HTTP/1.1 client for webhook POSTs (asyncio streams, http and https).

Adapter layer (stdlib asyncio + ssl). Why not httpx: its connection pool spends most of a busy
sender's CPU looking for a free connection (quadratic in the pool size), which capped one sender
at a few hundred deliveries/s; webhooks need only one thing done well - POST a body, read the
status, a few headers and the start of the answer, never follow a redirect, give up after a
total timeout - so that is all this does.

Per (scheme, host, port) it keeps idle connections for reuse. A reused connection the receiver
had already closed is retried once on a fresh one (harmless: delivery is at-least-once and the
receiver dedupes on webhook-id). Response bodies are read up to MAX_DRAIN to keep the connection;
longer or unframed answers close it. Only the first SNIPPET bytes are kept for the log.
"""
from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
MAX_DRAIN = 256 * 1024
SNIPPET = 500
MAX_IDLE_PER_HOST = 256


class SendError(Exception):
    """The request could not be completed (connection refused, reset, malformed answer...)."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    snippet: bytes


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:  # already gone
            pass


class WebhookClient:
    def __init__(self, timeout: float, user_agent: str) -> None:
        self.timeout = timeout
        self.user_agent = user_agent
        self._idle: dict[tuple[str, str, int, str], list[_Conn]] = {}
        self._ssl = ssl.create_default_context()

    async def post(self, url: str, body: bytes, headers: dict[str, str], connect_to: str = "") -> Answer:
        """POST and return the answer; TimeoutError after `timeout` seconds in total.

        `connect_to` is the IP address to connect to (the one the SSRF guard approved), so a name
        re-pointed between the check and the connection cannot redirect the request; the URL's
        host still goes in the Host header and TLS server name."""
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" + (f":{parts.port}" if parts.port else "")
        lines = [f"POST {target} HTTP/1.1", f"Host: {host_header}", f"User-Agent: {self.user_agent}",
                 f"Content-Length: {len(body)}", "Connection: keep-alive"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        return await asyncio.wait_for(self._exchange((scheme, host, port, connect_to or host), request),
                                      self.timeout)

    async def _exchange(self, key: tuple[str, str, int, str], request: bytes) -> Answer:
        for attempt in range(2):
            conn, reused = await self._get(key)
            try:
                conn.writer.write(request)
                await conn.writer.drain()
                answer, keep = await self._read(conn.reader)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                conn.close()
                if reused and attempt == 0:
                    continue
                raise SendError(f"connection lost: {exc or type(exc).__name__}") from exc
            except (ValueError, UnicodeError) as exc:
                conn.close()
                raise SendError(f"malformed answer: {exc}") from exc
            except BaseException:
                conn.close()
                raise
            if keep:
                self._put(key, conn)
            else:
                conn.close()
            return answer
        raise SendError("connection lost")

    async def _get(self, key: tuple[str, str, int, str]) -> tuple[_Conn, bool]:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn, True
            conn.close()
        scheme, host, port, address = key
        try:
            reader, writer = await asyncio.open_connection(
                address, port, ssl=self._ssl if scheme == "https" else None,
                server_hostname=host if scheme == "https" else None, limit=MAX_HEAD)
        except OSError as exc:
            raise SendError(f"cannot connect: {exc}") from exc
        return _Conn(reader, writer), False

    def _put(self, key: tuple[str, str, int, str], conn: _Conn) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) < MAX_IDLE_PER_HOST:
            idle.append(conn)
        else:
            conn.close()

    async def _read(self, reader: asyncio.StreamReader) -> tuple[Answer, bool]:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError as exc:
            raise SendError("response headers too large") from exc
        lines = head.decode("latin-1").split("\r\n")
        status_parts = lines[0].split(" ", 2)
        if len(status_parts) < 2 or not status_parts[0].startswith("HTTP/1.") or not status_parts[1].isdigit():
            raise SendError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
        status = int(status_parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        keep = headers.get("connection", "").lower() != "close" and status_parts[0] == "HTTP/1.1"
        if status in (204, 304) or 100 <= status < 200:
            return Answer(status, headers, b""), keep
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body, complete = await self._read_chunked(reader)
            return Answer(status, headers, body[:SNIPPET]), keep and complete
        length = headers.get("content-length")
        if length is not None and length.isdigit():
            n = int(length)
            if n > MAX_DRAIN:
                return Answer(status, headers, await reader.read(SNIPPET)), False
            return Answer(status, headers, (await reader.readexactly(n))[:SNIPPET]), keep
        return Answer(status, headers, await reader.read(SNIPPET)), False   # close-delimited

    async def _read_chunked(self, reader: asyncio.StreamReader) -> tuple[bytes, bool]:
        body = bytearray()
        for _ in range(10_000):
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                await reader.readuntil(b"\r\n")     # end of (absent) trailers
                return bytes(body), True
            if len(body) + size > MAX_DRAIN:
                return bytes(body), False
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return bytes(body), False

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
