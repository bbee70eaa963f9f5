"""The app served for real on 127.0.0.1, for what needs a socket: browsers and HTTP
client libraries that bring their own transport."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Self

import uvicorn

from contact.app import create_app
from contact.settings import Settings
from tests.conftest import wait_for


class AppServer:
    """An ASGI app under uvicorn in a thread of this process, on a port the system picks."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()))
        self.url = ""

    def __enter__(self) -> Self:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=30)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class LiveServer(AppServer):
    """The central app under uvicorn in a thread of this process."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(create_app(settings))
