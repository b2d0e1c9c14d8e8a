"""`make run` from a clean copy of the repository serves demo data and answers a search."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.test_server_process import free_port

pytestmark = pytest.mark.slow


def test_make_run_in_a_clean_copy(tmp_path: Path, repo_root: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    copy = tmp_path / "repo"
    tracked = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in tracked:
        src = repo_root / rel
        if src.is_file():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy / rel)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "AGGREGATA_"))}
    env["AGGREGATA_DEMO_EVENTS"] = "5000"
    log = (tmp_path / "make-run.log").open("wb")
    proc = subprocess.Popen(
        ["make", "run", f"PORT={port}"], cwd=copy, env=env, stdout=log, stderr=log, start_new_session=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "make-run.log").read_text()[-3000:]
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        else:
            pytest.fail("make run did not serve /health in time")
        health = httpx.get(base + "/health").json()
        assert health["engine"] == "duckdb" and health["collections"] >= 2
        body = {"query": {"term": {"category": "Electronics"}}, "size": 2}
        hits = httpx.post(base + "/v1/collections/products/_search", json=body, timeout=30).json()["hits"]
        assert hits["total"]["value"] > 0 and len(hits["hits"]) == 2
        assert httpx.get(base + "/v1/collections/events").json()["count"] == 5000
        assert "curl" in (tmp_path / "make-run.log").read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()
