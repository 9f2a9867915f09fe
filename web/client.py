"""A small Python client of nst-web's HTTP API (standard library only): submit a run, follow a tab's event stream,
stop, download. What the page's script does, for the tests and bench/web_overhead.py."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, body: dict):
        super().__init__(f"{status}: {body.get('error')}")
        self.status, self.body = status, body


def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request; files: (field, file name, bytes)."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class EventStream:
    """A tab's server-sent events as dicts; closing it is what closing the tab does to the server."""

    def __init__(self, url: str, timeout: float):
        self.response = urllib.request.urlopen(url, timeout=timeout)

    def __iter__(self) -> Iterator[dict]:
        for raw in self.response:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("data: "):
                yield json.loads(line[6:])

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Client:
    def __init__(self, url: str, session: str | None = None, timeout: float = 120.0):
        self.url, self.session, self.timeout = url.rstrip("/"), session or uuid.uuid4().hex, timeout

    def request(self, path: str, data: bytes | None = None, content_type: str | None = None) -> bytes:
        headers = {"Content-Type": content_type} if content_type else {}
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method="POST" if data else "GET")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                raise ApiError(e.code, json.loads(body)) from None
            except json.JSONDecodeError:
                raise ApiError(e.code, {"error": body.decode(errors="replace")}) from None

    def submit(
        self,
        content: tuple[str, bytes],
        styles: list[tuple[str, bytes]],
        masks: list[tuple[str, bytes] | None] | None = None,
        source_masks: list[tuple[str, bytes] | None] | None = None,
        **options: Any,
    ) -> dict:
        """Start a run: content and styles as (file name, bytes); masks and source masks per style as (file name,
        bytes) or None; options as the page's form names them."""
        fields = {"session": self.session, **{k: str(v) for k, v in options.items()}}
        files = [("content", *content)] + [("style", *s) for s in styles]
        for field, given in (("mask", masks), ("source_mask", source_masks)):
            files += [(f"{field}{i}", *m) for i, m in enumerate(given or []) if m is not None]
        body, kind = multipart(fields, files)
        return dict(json.loads(self.request("/api/jobs", body, kind)))

    def stop(self, job: str) -> dict:
        return dict(json.loads(self.request(f"/api/jobs/{job}/stop", b"{}", "application/json")))

    def events(self) -> EventStream:
        return EventStream(f"{self.url}/api/sessions/{self.session}/events", self.timeout)
