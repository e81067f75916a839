"""A fake Sentry ingest over real HTTP: accepts envelopes at `/api/<project>/envelope/`, decompresses and parses
them, and keeps every item, so tests can check what the real sentry-sdk would have sent.

    with SentryIngest().running() as ingest:
        dsn = ingest.dsn          # http://public@127.0.0.1:<port>/1
        ...
        events = ingest.wait_for_events(1)
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.http_server import run_in_thread

PUBLIC_KEY = "public"


@dataclass
class Envelope:
    project: str
    auth: str
    raw: str  # the decompressed body, for "this text appears nowhere" checks
    header: dict[str, Any]
    items: list[tuple[dict[str, Any], Any]] = field(default_factory=list)


def parse_envelope(body: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], Any]]]:
    """Sentry's envelope format: a JSON header line, then per item a JSON header line and a payload whose
    length is given by the header (or which runs to the end of the line)."""
    first, _, rest = body.partition(b"\n")
    header = json.loads(first)
    items: list[tuple[dict[str, Any], Any]] = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        if not line.strip():
            continue
        item_header = json.loads(line)
        length = item_header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:].removeprefix(b"\n")
        kind = item_header.get("type")
        parsed: Any = json.loads(payload) if kind in {"event", "transaction", "session", "sessions"} else payload
        items.append((item_header, parsed))
    return header, items


class SentryIngest:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self._changed = threading.Condition()
        self.base_url = ""
        self.app = Starlette(routes=[Route("/api/{project}/envelope/", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> JSONResponse:
        body = await request.body()
        encoding = request.headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            # The SDK compresses with Brotli whenever the `brotli` package is installed (Locust brings it).
            import brotli

            body = brotli.decompress(body)
        elif encoding:
            return JSONResponse({"detail": f"unsupported encoding {encoding}"}, status_code=415)
        header, items = parse_envelope(body)
        envelope = Envelope(
            project=request.path_params["project"],
            auth=request.headers.get("x-sentry-auth", ""),
            raw=body.decode("utf-8", "replace"),
            header=header,
            items=items,
        )
        with self._changed:
            self.envelopes.append(envelope)
            self._changed.notify_all()
        return JSONResponse({"id": header.get("event_id")})

    @property
    def dsn(self) -> str:
        return f"{self.base_url.replace('http://', f'http://{PUBLIC_KEY}@')}/1"

    def events(self, kind: str = "event") -> list[dict[str, Any]]:
        with self._changed:
            return [payload for e in self.envelopes for h, payload in e.items if h.get("type") == kind]

    def wait_for_events(self, count: int, kind: str = "event", timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [p for e in self.envelopes for h, p in e.items if h.get("type") == kind]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                self._changed.wait(remaining)

    def raw_text(self) -> str:
        with self._changed:
            return "\n".join(e.raw for e in self.envelopes)

    @contextmanager
    def running(self) -> Iterator[SentryIngest]:
        with run_in_thread(self.app) as base_url:
            self.base_url = base_url
            yield self
