"""The gateway's access log: one line per HTTP request, written when its response has been sent
(so a long event stream is logged with its real duration), on the `ducklm.gateway.access` logger.

Logs the method, the path (never the query string or any header: tokens and cookies stay out of
logs), the status, the bytes of the body, the time taken and the client address.
"""

from __future__ import annotations

import logging
import time

from starlette.types import Message, Receive, Scope, Send

from services.common.asgi import HttpMiddleware

__all__ = ["ACCESS_LOGGER", "AccessLogMiddleware"]

ACCESS_LOGGER = logging.getLogger("ducklm.gateway.access")


class AccessLogMiddleware(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status, size = 0, 0

        async def counting_send(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            client = scope.get("client")
            ACCESS_LOGGER.info(
                "%s %s %d %dB %.1fms %s",
                scope["method"],
                scope["path"],
                status or 500,
                size,
                (time.perf_counter() - started) * 1000,
                f"{client[0]}:{client[1]}" if client else "-",
            )
