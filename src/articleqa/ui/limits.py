"""What the server accepts: request and upload sizes, and the BodyLimit middleware that checks them at the door."""

from __future__ import annotations

import json
import re
from pathlib import Path

from articleqa.ingest.documents import SUFFIXES as DOCUMENT_SUFFIXES
from articleqa.ingest.files import FORMATS, SUPPORTED
from articleqa.library import HISTORY_TURNS
from articleqa.settings import MIB, Limits

# The bounds are Settings.limits' (settings.Limits says what each bounds).
_LIMITS = Limits()
MAX_UPLOAD_BYTES = int(_LIMITS.upload_mb * MIB)
MAX_DOCUMENT_UPLOAD_BYTES = int(_LIMITS.document_upload_mb * MIB)  # documents carry pictures besides text
# Any other request (a question, a chat turn with its conversation) is refused at the door above
# this size, before it is read or queued.
MAX_REQUEST_BYTES = _LIMITS.request_kib * 1024
# A call of the ask or search API carries one question and the earlier ones (only the last
# `history_turns` are read): refused unread above this, so a client sending a whole long
# conversation costs the server nothing (docs/reliability.md).
MAX_API_REQUEST_BYTES = _LIMITS.api_request_kib * 1024
UPLOAD_TYPES = SUPPORTED

# The API functions whose calls are checked at the door, and their arguments in order.
_CHECKED = {"ask": ("question", "k", "mode", "history"), "search": ("question", "k", "mode")}
# Gradio serves a function at four routes: /call/NAME and /run/NAME and /api/NAME take
# {"data": [arguments in order]}, /call/v2/NAME takes {name: argument}.
_API_ROUTE = re.compile(r"/(call/v2|call|run|api)/([^/]+)/?$")


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 at once, unread when its
    Content-Length says so, else as soon as the bytes received pass it (uploads have their own
    limit, Gradio's max_file_size). A call of the ask or search API, at any of Gradio's routes
    for it, has the tighter `api_limit` and is checked by `check` before it joins the queue, so a
    bad one is refused at once (422) instead of waiting for its turn."""

    def __init__(self, app, limit: int = MAX_REQUEST_BYTES, check=None, api_limit: int = MAX_API_REQUEST_BYTES) -> None:
        self.app = app
        self.limit = limit
        self.api_limit = api_limit
        self.check = check

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].rstrip("/").endswith("/upload"):
            return await self.app(scope, receive, send)
        route = _API_ROUTE.search(scope["path"]) if scope["method"] == "POST" else None
        checked = self.check is not None and route is not None and route[2] in _CHECKED
        limit = self.api_limit if checked else self.limit
        length = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return await _refuse(send, 413, _too_large(f"{int(length):,} bytes", limit, checked))
        if not checked and length.isdigit():
            return await self.app(scope, receive, send)
        # Read whole (a body sent without its length is counted as it comes), then replayed.
        chunks, size, more = [], 0, True
        while more:
            event = await receive()
            if event["type"] == "http.disconnect":
                return None  # the client left: nobody to answer
            chunks.append(event.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return await _refuse(send, 413, _too_large(f"over {limit:,} bytes", limit, checked))
            more = event.get("more_body", False)
        body = b"".join(chunks)
        if checked:
            problem = self._problem(route, body)
            if problem:
                return await _refuse(send, 422, problem)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _problem(self, route: re.Match, body: bytes) -> str | None:
        """Why a call of a checked API function is refused, or None."""
        names = _CHECKED[route[2]]
        try:
            sent = json.loads(body)
            if route[1] == "call/v2":  # named arguments
                if not isinstance(sent, dict):
                    raise TypeError
                arguments = {name: sent[name] for name in names if name in sent}
            else:
                values = sent["data"]
                if not isinstance(values, list):
                    raise TypeError
                arguments = dict(zip(names, values))
        except (ValueError, KeyError, TypeError):
            shape = (
                "{" + ", ".join(f'"{n}": ...' for n in names) + "}"
                if route[1] == "call/v2"
                else ('{"data": [' + ", ".join(names) + "]}")
            )
            return f"send JSON: {shape}"
        return self.check(arguments)


def _too_large(size: str, limit: int, api: bool) -> str:
    what = " for an ask or search call" if api else ""
    return (
        f"request of {size} refused: the limit{what} is {limit:,} "
        f"(questions are under 1,000 characters; send at most the last {HISTORY_TURNS} of history)"
    )


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def check_upload(name: str, size: int) -> str | None:
    """Why an uploaded file is refused, or None. `name` is only looked at, never opened."""
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_TYPES:
        return f"{name}: unsupported file type '{suffix or '(none)'}' (upload {FORMATS})"
    limit = MAX_DOCUMENT_UPLOAD_BYTES if suffix in DOCUMENT_SUFFIXES else MAX_UPLOAD_BYTES
    if size > limit:
        return f"{name}: too large ({size / 1024 / 1024:.1f} MB; the limit is {limit // 1024 // 1024} MB)"
    if size == 0:
        return f"{name}: the file is empty"
    return None
