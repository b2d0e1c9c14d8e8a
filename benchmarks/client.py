"""The benchmarks' HTTP client: one kept-alive HTTP/1.1 connection from the standard library.

A load generator should cost the machine as little as it can: it shares the two cores
with the server it measures. httpx spent ~1.3 ms of its own CPU per request here (a
`_search` took 13.95 ms through httpx and 12.66 ms through this client, same server, in
turns), which is the client's cost, not the API's latency.
"""

from __future__ import annotations

import http.client
import time
from typing import Any

import orjson

_RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class HTTPError(RuntimeError):
    """A response outside 2xx."""


class Client:
    def __init__(self, port: int, *, timeout: float = 600) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
    ) -> bytes:
        """The response body; a non-2xx status raises. A connection the server closed while
        idle (its keep-alive timeout) is opened again once."""
        headers = {"content-type": content_type} if body is not None else {}
        for attempt in (0, 1):
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
                break
            except _RETRYABLE:
                self._conn.close()
                if attempt:
                    raise
        if not 200 <= response.status < 300:
            raise HTTPError(f"{method} {path}: {response.status} {data[:500]!r}")
        return data

    def wait_ready(self, seconds: float) -> None:
        """Wait until a starting server answers ``GET /health`` (connection refused until then)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.get("/health")
                return
            except OSError:
                self._conn.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def get(self, path: str) -> Any:
        return orjson.loads(self.request("GET", path))

    def post(self, path: str, body: Any) -> Any:
        return orjson.loads(self.request("POST", path, orjson.dumps(body)))

    def close(self) -> None:
        self._conn.close()
