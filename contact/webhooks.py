"""Provider webhooks on a short path through the app.

Twilio posts every inbound text and every delivery report, and waits for the
answer; under a burst these are most of the traffic. Their handlers need nothing
from the framework — no dependencies, no body models: they read a form, check its
signature and store it — so this middleware, first in the stack, hands a ``POST`` to
one of their paths straight to the handler. Everything else goes down the ordinary
stack. The routes stay in the router as well, which documents them in OpenAPI.

Errors keep the app's one body shape (:class:`contact.errors.ContactError`); bodies
are bounded (a Twilio form is a few kilobytes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contact.errors import ContactError

Handler = Callable[[Request], Awaitable[Response]]
MAX_BODY = 256 * 1024


class BodyTooLarge(ContactError):
    code = "body_too_large"
    http_status = 413


class ProviderWebhooks:
    def __init__(
        self, app: ASGIApp, routes: Mapping[str, Handler], max_body: int = MAX_BODY
    ) -> None:
        self.app = app
        self.routes = dict(routes)
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = None
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.routes.get(scope["path"])
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, self._bounded(receive))
        try:
            response = await handler(request)
        except ContactError as exc:
            response = JSONResponse(exc.body(), status_code=exc.http_status)
        await response(scope, receive, send)

    def _bounded(self, receive: Receive) -> Receive:
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise BodyTooLarge(f"the body is larger than {self.max_body} bytes")
            return message

        return bounded
