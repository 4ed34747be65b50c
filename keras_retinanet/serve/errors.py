"""The server's errors: every refusal is a 4xx or 5xx with a one-line JSON body ``{"error": "..."}``."""

from typing import Dict, Optional

from fastapi.responses import JSONResponse

class RequestError(Exception):
    """A request the server refuses: a status, a one-line message and optional headers."""

    def __init__(self, status: int, message: str, headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    """``{"error": message}`` on one line (newlines in a message become spaces)."""
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: a request body longer than ``max_bytes`` gets 413, by its Content-Length before any byte is
    read, or as soon as a body sent without one (chunked) passes the limit."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await error_response(400, "Content-Length is not a number")(scope, receive, send)
                return
            if int(length) > self.max_bytes:
                response = error_response(413, f"body of {int(length)} bytes is larger than the server's "
                                          f"{self.max_bytes} bytes (retinanet-serve --max-upload-mb)")
                await response(scope, receive, send)
                return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestError(413, f"body larger than the server's {self.max_bytes} bytes "
                                       "(retinanet-serve --max-upload-mb)")
            return message

        await self.app(scope, limited_receive, send)
