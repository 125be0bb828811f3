"""Request limits every HTTP app shares: body size and JSON nesting depth.

One pure ASGI middleware (``RequestLimits``) sits in front of every route of an app
(``install_common`` adds it). It reads the request body before any route does:

- a ``Content-Length`` above the limit is answered 413 at once, without reading;
- a body sent without one (``Transfer-Encoding: chunked``) is counted while it
  streams in and answered 413 as soon as it passes the limit, so memory stays
  bounded by the limit whatever the client claims;
- a body that looks like JSON (a JSON content type, or it starts with ``{``/``[``)
  nested deeper than the depth limit is answered 400 before any parser recurses
  into it (Python's parser raises RecursionError at about 1,000 levels, a 500).

Bodies refused here are not dead-lettered: they are not a resident's feedback, and
keeping them would let anyone fill feedback.dlq with megabytes.
"""
from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# A JSON string (skipped whole, escapes included) or one bracket: only brackets count.
_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def json_too_deep(raw: bytes, max_depth: int) -> bool:
    """True when the JSON text in ``raw`` nests arrays/objects deeper than ``max_depth``.

    A scan, not a parse: it stops at the first level past the limit, so a hostile
    100,000-level body costs microseconds. Malformed JSON is left to the parser.
    """
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False  # too few brackets to nest that deep, wherever they are (a count in C)
    depth = 0
    for m in _JSON_TOKENS.finditer(raw):
        c = m.group()
        if c in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return True
        elif c in (b"]", b"}"):
            depth -= 1
    return False


def _looks_like_json(content_type: str, body: bytes) -> bool:
    return "json" in content_type or body.lstrip()[:1] in (b"{", b"[")


async def _refuse(send: Send, status: int, error: str, problem: str, **extra: Any) -> None:
    body = json.dumps({"error": error, "errors": [{"field": "(body)", "problem": problem}], **extra}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """ASGI middleware: 413 for a body over ``max_body_bytes``, 400 for JSON deeper than ``max_json_depth``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_json_depth: int) -> None:
        self.app, self.max_body_bytes, self.max_json_depth = app, max_body_bytes, max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, content_type = None, ""
        for name, value in scope.get("headers", ()):  # ASGI servers give names in lower case
            if name == b"content-length":
                declared = value
            elif name == b"content-type":
                content_type = value.decode("latin-1").lower()
        too_large = f"the request body is larger than the limit of {self.max_body_bytes} bytes (FEEDBACK_MAX_BODY_BYTES)"
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body_bytes:
            await _refuse(send, 413, "body_too_large", too_large, limit_bytes=self.max_body_bytes)
            return
        # Read the body here (it is small by construction) so the limit also holds for chunked
        # bodies, whose size nobody declares; the route then reads the same bytes again.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _refuse(send, 413, "body_too_large", too_large, limit_bytes=self.max_body_bytes)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and _looks_like_json(content_type, body) and json_too_deep(body, self.max_json_depth):
            await _refuse(send, 400, "json_too_deep",
                          f"JSON nested deeper than {self.max_json_depth} levels (FEEDBACK_MAX_JSON_DEPTH)",
                          limit_depth=self.max_json_depth)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls wait for the disconnect, as the server's would

        await self.app(scope, replay, send)
