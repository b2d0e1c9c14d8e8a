"""Durability with real processes: a 2xx survives SIGKILL of the server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "AGGREGATA_DATA_DIR": str(self.data_dir)}
        log = self.data_dir.parent / "server.log"
        with log.open("ab") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "aggregata.cli", "serve", "--port", str(self.port)],
                env=env,
                stdout=sink,
                stderr=sink,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(log.read_text())
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "data")
    srv.start()
    yield srv
    srv.stop()


def test_acknowledged_writes_survive_sigkill(server: Server) -> None:
    events = [
        {
            "event": "pageview",
            "distinct_id": f"u{i % 50}",
            "uuid": f"00000000-0000-4000-8000-{i:012d}",
            "timestamp": "2026-11-01T10:00:00Z",
        }
        for i in range(3000)
    ]
    acknowledged = 0
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for start in range(0, len(events), 500):
            r = client.post("/v1/events", json=events[start : start + 500])
            assert r.status_code == 200
            acknowledged += r.json()["stored"]
        r = client.post("/v1/collections/docs/documents", json=[{"_id": "x", "v": 1}])
        assert r.json()["stored"] == 1
    server.kill()
    server.start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/v1/collections/events").json()["count"] == acknowledged == 3000
        assert client.get("/v1/collections/docs").json()["count"] == 1
        # A client retrying the whole stream after the crash double-counts nothing.
        for start in range(0, len(events), 500):
            assert client.post("/v1/events", json=events[start : start + 500]).json()["duplicates"] == 500
        assert client.get("/v1/collections/events").json()["count"] == 3000
