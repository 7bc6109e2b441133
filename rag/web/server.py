"""The app's HTTP edge: a bounded request size, the plain-text source route, and the server.

The Gradio app is mounted on a FastAPI app of our own so that every request passes a size
limit first (a question is at most 1,000 characters; nothing needs a large body) and so that
a card's "open the full source" is a plain-text download of the indexed text, not part of
every answer page. The server is uvicorn on a socket bound here, so a busy port is one line.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from rag.web.page import CSS, HEAD, SOURCE_ROUTE
from rag.web.state import AppState

MAX_REQUEST_BYTES = 64 * 1024  # the largest request body the app accepts

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: a request whose body is over `limit` bytes gets 413 and a one-line
    JSON message, whether it declares its length or streams it."""

    def __init__(self, app: ASGIApp, limit: int = MAX_REQUEST_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = (f'{{"error": "the request is larger than {self.limit} bytes; a question is at most '
                f'1000 characters, so send less"}}').encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def build_app(state: AppState, demo: Any) -> Any:
    """FastAPI app: the size limit, the source route, and the Gradio UI and API at "/"."""
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get(SOURCE_ROUTE)
    def source(name: str = "") -> PlainTextResponse:
        """The text of one source exactly as indexed, as plain text (nothing in it can run)."""
        text = state.get().texts.get(name)
        if text is None:
            return PlainTextResponse(f"no indexed source named {name!r}\n", status_code=404)
        return PlainTextResponse(text, headers={"X-Content-Type-Options": "nosniff",
                                                "Content-Security-Policy": "default-src 'none'; sandbox"})

    app.add_middleware(BodyLimit)
    return gr.mount_gradio_app(app, demo, path="/", css=CSS, head=HEAD, show_error=True)


def serve(app: Any, host: str, port: int, on_ready: Callable[[], None]) -> None:
    """Serve until interrupted; a port that cannot be bound raises OSError before anything runs."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="rag-http", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise OSError(f"the server on {host}:{port} stopped while starting")
        time.sleep(0.02)
    on_ready()
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(10)
