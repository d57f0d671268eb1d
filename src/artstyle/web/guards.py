"""Pure ASGI middleware that refuses requests before the application reads their bodies.

Starlette's multipart parser spools a whole upload to a temporary file before the endpoint sees it,
so a check in the endpoint comes after the upload: after the disk has filled, or after the CPU went
into parsing a photo that a busy server will not paint. :class:`BodyLimit` answers 413 at once when
the declared ``Content-Length`` is over the limit (without reading a byte, so a client that sent
``Expect: 100-continue`` never uploads), or as soon as the bytes received pass it. :class:`Gate`
answers an error such as 503 while a condition holds (the server leaves the unread body). Both
answer ``{"error": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """Raised into the application from ``receive`` once the body is over the limit."""


class BodyLimit:
    """Refuse HTTP request bodies over ``max_bytes`` with 413 and ``{"error": message}``.

    Args:
        app: the ASGI application to wrap.
        max_bytes: the most bytes a request body may have (the whole body: files, fields, multipart framing).
        message: the error shown to the client, saying what the limit is.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, message: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not started and not refused:
                        refused = True
                        await self._refuse(send)
                    raise BodyTooLarge(self.message)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:  # the 413 went out already; the application's answer is dropped
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not refused:
                raise

    async def _refuse(self, send: Send) -> None:
        await send_error(send, 413, self.message, {"Connection": "close"})  # and read no more of it


Refusal = tuple[int, str, dict[str, str]]  # status, message, headers


class Gate:
    """Answer ``method path`` requests with ``refuse()``'s error, when it gives one, before reading them.

    Args:
        app: the ASGI application to wrap.
        method: the HTTP method of the requests to check, e.g. ``POST``.
        path: their path, e.g. ``/api/stylize``.
        refuse: None to let a request through, or (status, message, headers) to answer it.
    """

    def __init__(self, app: ASGIApp, method: str, path: str, refuse: Callable[[], Refusal | None]) -> None:
        self.app = app
        self.method = method
        self.path = path
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == self.method and \
                scope["path"] in (self.path, scope.get("root_path", "") + self.path):
            refusal = self.refuse()
            if refusal is not None:
                await send_error(send, *refusal)
                return
        await self.app(scope, receive, send)


async def send_error(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    """Send a whole ``{"error": message}`` response with ``status``."""
    body = json.dumps({"error": message}).encode()
    fields = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    fields += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
