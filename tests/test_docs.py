"""The user documentation's examples, run against the demo data: a doc that lies fails here.

Each file below is run top to bottom on its own copy of one seeded demo store (2,000
products, 20,000 events, seed 42, ``now`` = 2026-11-01T12:00:00Z). Fenced blocks:

* ``http``: ``METHOD /path``, optional ``Header: value`` lines, then the body (JSON or
  NDJSON). A ``# expect 404`` line sets the expected status; otherwise any 2xx passes.
* ``json`` right after an ``http`` block (blank lines between at most): the response,
  abridged. Every key shown must be in the real response with the value shown; a list
  shown is the first items of the real list; a float matches to the decimals shown.
  Other ``json`` blocks are illustrations and only have to be valid JSON.
* ``python``: run in one namespace per file, against a live server (``127.0.0.1:8000``
  in the text is replaced by its address). A ``text`` block right after it is its exact
  standard output.
* ``sh``: ``aggregata ...`` lines run through the CLI in a scratch directory, ``curl ...``
  lines through the app. A ``text`` block right after it holds lines the output contains.

Any other block fails, so that no example escapes the test. README.md: only its curl lines.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from aggregata.api.app import create_app
from aggregata.cli import app as cli_app
from aggregata.demo.seed import seed_demo
from aggregata.ingest.service import IngestService
from aggregata.search.service import SearchService
from aggregata.services import Services
from aggregata.settings import Settings
from aggregata.storage.duckdb import DuckDBEngine

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("docs/ingest.md", "docs/search.md", "docs/aggregations.md", "docs/elasticsearch-api.md")
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DEMO_PRODUCTS, DEMO_EVENTS = 2_000, 20_000
DOC_URL = "http://127.0.0.1:8000"
DB_FILE = "aggregata.duckdb"
# Values that differ run to run: only their presence is checked.
VOLATILE = frozenset({"took", "compile_ms", "hits_ms", "total_ms", "aggs_ms", "ms", "data_dir"})
FENCE = re.compile(r"^```\s*(\S*)(.*)$")
HEADER = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):\s*(.+)$")
EXPECT = re.compile(r"^#\s*expect\s+(\d{3})\s*$")


# -- reading the docs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    start: int  # line of the opening fence, 1-based
    end: int  # line of the closing fence
    where: str


def blocks(markdown: str, name: str) -> list[Block]:
    """Every fenced block of a markdown text, in order."""
    out: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if j == len(lines):
            raise AssertionError(f"{name}:{i + 1}: unclosed code fence")
        out.append(Block(fence.group(1), "\n".join(lines[i + 1 : j]), i + 1, j + 1, f"{name}:{i + 1}"))
        i = j + 1
    return out


def follows(markdown: str, first: Block, second: Block) -> bool:
    """Whether only blank lines separate two blocks."""
    between = markdown.splitlines()[first.end : second.start - 1]
    return all(not line.strip() for line in between)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    expect: int | None


def parse_http(text: str) -> Request:
    """``METHOD /path``, headers, body; ``#`` lines before the body are comments."""
    lines = text.splitlines()
    expect = None
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith("#")):
        found = EXPECT.match(lines[i].strip())
        if found:
            expect = int(found.group(1))
        i += 1
    if i == len(lines):
        raise ValueError("no request line")
    method, _, path = lines[i].strip().partition(" ")
    if not method.isupper() or not path.startswith("/"):
        raise ValueError(f"bad request line {lines[i]!r}")
    headers: dict[str, str] = {}
    i += 1
    while i < len(lines) and (header := HEADER.match(lines[i])):
        headers[header.group(1).lower()] = header.group(2).strip()
        i += 1
    body = "\n".join(lines[i:]).strip()
    if body:
        headers.setdefault("content-type", "application/json")
    return Request(method, path.strip(), headers, (body + "\n").encode() if body else None, expect)


def parse_curl(command: str) -> Request:
    """The subset of curl the docs use: ``-X``, ``-H``, ``-d``, one URL on the doc server."""
    args = shlex.split(command, comments=True)[1:]
    method, url, body = None, None, None
    headers: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-s":
            pass
        elif arg.startswith("-X"):
            method = arg[2:] or args[(i := i + 1)]
        elif arg == "-H":
            name, _, value = args[(i := i + 1)].partition(":")
            headers[name.strip().lower()] = value.strip()
        elif arg in ("-d", "--data", "--data-binary"):
            body = args[(i := i + 1)].encode()
        elif arg.startswith(DOC_URL):
            url = arg
        else:
            raise ValueError(f"unsupported curl argument {arg!r}")
        i += 1
    if url is None:
        raise ValueError("no URL on " + DOC_URL)
    return Request(method or ("POST" if body else "GET"), url[len(DOC_URL) :] or "/", headers, body, None)


def commands(text: str) -> list[str]:
    """Shell commands: ``\\`` continuations joined, quotes may span lines, comment lines dropped."""
    out: list[str] = []
    command = ""
    for line in re.sub(r"\s*\\\n\s*", " ", text).splitlines():
        if not command and (not line.strip() or line.lstrip().startswith("#")):
            continue
        command = f"{command}\n{line}" if command else line.strip()
        with contextlib.suppress(ValueError):  # an open quote: the command goes on
            shlex.split(command)
            out.append(command)
            command = ""
    return [*out, command] if command else out


# -- comparing responses ----------------------------------------------------------------------


def _decimals(x: float) -> int | None:
    text = repr(x)
    return None if "e" in text or "." not in text else len(text.split(".")[1])


def mismatches(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """How ``actual`` fails to contain ``expected`` (see the module docstring); empty if it does."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {json.dumps(actual)[:80]}"]
        out = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{where}: missing key {key!r} (has {sorted(actual)[:12]})")
            elif key not in VOLATILE:
                out += mismatches(value, actual[key], f"{where}.{key}")
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected an array, got {json.dumps(actual)[:80]}"]
        if len(actual) < len(expected):
            return [f"{where}: expected at least {len(expected)} items, got {len(actual)}"]
        return [m for i, item in enumerate(expected) for m in mismatches(item, actual[i], f"{where}[{i}]")]
    if isinstance(expected, float) and isinstance(actual, float):
        digits = _decimals(expected)
        close = (
            abs(actual - expected) <= 0.5 * 10.0**-digits * (1 + 1e-9)
            if digits is not None
            else abs(actual - expected) <= 1e-9 * abs(expected)
        )
        return [] if close else [f"{where}: expected {expected!r}, got {actual!r}"]
    if type(expected) is not type(actual) or expected != actual:
        return [f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)[:120]}"]
    return []


# -- the environment each doc runs in ---------------------------------------------------------


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo data, seeded once; each doc file gets a copy."""
    directory = tmp_path_factory.mktemp("demo")
    engine = DuckDBEngine(directory / DB_FILE, threads=2)
    try:
        seed_demo(IngestService(engine, clock=lambda: NOW), events=DEMO_EVENTS, products=DEMO_PRODUCTS)
        engine.checkpoint()
    finally:
        engine.close()
    return directory


@contextlib.contextmanager
def demo_services(store: Path, directory: Path) -> Iterator[Services]:
    directory.mkdir()
    for f in store.iterdir():
        shutil.copy(f, directory / f.name)
    engine = DuckDBEngine(directory / DB_FILE, threads=2)
    settings = Settings(data_dir=directory)
    ingest = IngestService(engine, clock=lambda: NOW)
    try:
        yield Services(settings, engine, ingest, SearchService(engine, clock=lambda: NOW))
    finally:
        engine.close()


@contextlib.contextmanager
def live_server(services: Services) -> Iterator[str]:
    """The app on a real socket in a thread, for the client library and ``--url`` examples."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(services.settings, services), log_level="warning", ws="none")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the doc server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class DocRunner:
    """Runs one markdown file's blocks in order and collects every failure."""

    def __init__(self, name: str, client: TestClient, scratch: Path, server: str | None) -> None:
        self.name = name
        self.client = client
        self.scratch = scratch
        self.server = server
        self.namespace: dict[str, Any] = {"__name__": "docs"}
        self.failures: list[str] = []
        self.ran = 0

    def run(self, markdown: str, *, curl_only: bool = False) -> None:
        found = blocks(markdown, self.name)
        used: set[int] = set()
        for i, block in enumerate(found):
            after = found[i + 1] if i + 1 < len(found) and follows(markdown, block, found[i + 1]) else None
            try:
                if curl_only:
                    if block.lang == "sh":
                        for line in commands(block.text):
                            if line.startswith("curl "):
                                self.http(parse_curl(line), None)
                    continue
                if i in used:
                    continue
                expected = after if after is not None and after.lang in ("json", "text") else None
                if expected is not None:
                    used.add(i + 1)
                self.block(block, expected)
            except Exception as exc:  # one broken example must not hide the others
                self.failures.append(f"{block.where}: {type(exc).__name__}: {exc}")

    def block(self, block: Block, expected: Block | None) -> None:
        shown = expected.text if expected is not None else None
        if block.lang == "http":
            if expected is not None and expected.lang != "json":
                raise AssertionError("an http block is followed by a json response, not text")
            self.http(parse_http(block.text), shown)
        elif block.lang == "python":
            self.python(block, shown)
        elif block.lang == "sh":
            self.shell(block, shown)
        elif block.lang == "json":
            json.loads(block.text)  # an illustration: it must at least be JSON
        else:
            raise AssertionError(f"a [{block.lang or 'plain'}] block that is not run or checked")

    def http(self, request: Request, shown: str | None) -> None:
        self.ran += 1
        response = self.client.request(
            request.method, request.path, content=request.body, headers=request.headers
        )
        ok = response.status_code == request.expect if request.expect else response.is_success
        if not ok:
            raise AssertionError(
                f"{request.method} {request.path} answered {response.status_code}"
                f" (expected {request.expect or '2xx'}): {response.text[:300]}"
            )
        if shown is not None:
            problems = mismatches(json.loads(shown), response.json())
            if problems:
                raise AssertionError(f"{request.method} {request.path}: " + "; ".join(problems[:5]))

    def python(self, block: Block, shown: str | None) -> None:
        assert self.server is not None
        self.ran += 1
        source = block.text.replace(DOC_URL, self.server)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(source, block.where, "exec"), self.namespace)
        if shown is not None and out.getvalue().rstrip() != shown.rstrip():
            raise AssertionError(f"printed:\n{out.getvalue()}\nthe doc shows:\n{shown}")

    def shell(self, block: Block, shown: str | None) -> None:
        output = []
        for line in commands(block.text):
            self.ran += 1
            if line.startswith("curl "):
                self.http(parse_curl(line), None)
                continue
            args = shlex.split(line.replace(DOC_URL, self.server or DOC_URL), comments=True)
            if args[0].removeprefix(".venv/bin/") != "aggregata":
                raise AssertionError(f"cannot run {line!r}: only aggregata and curl lines are run")
            with contextlib.chdir(self.scratch):
                result = CliRunner().invoke(cli_app, args[1:], env={"AGGREGATA_DATA_DIR": "data"})
            if result.exit_code != 0:
                raise AssertionError(f"{line!r} exited with {result.exit_code}: {result.output[-500:]}")
            output.append(result.output)
        flat = " ".join(" ".join(output).split())
        for want in (shown or "").splitlines():
            if want.strip() and " ".join(want.split()) not in flat:
                raise AssertionError(f"output lacks {want.strip()!r}; it was:\n{''.join(output)[-800:]}")


def run_file(name: str, store: Path, tmp_path: Path, *, curl_only: bool = False) -> DocRunner:
    markdown = (ROOT / name).read_text()
    needs_server = "```python" in markdown or "--url" in markdown
    with demo_services(store, tmp_path / "store") as services:
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(live_server(services)) if needs_server else None
            client = stack.enter_context(TestClient(create_app(services.settings, services)))
            runner = DocRunner(name, client, scratch, server)
            runner.run(markdown, curl_only=curl_only)
    return runner


# -- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DOCS)
def test_doc_examples_work(name: str, demo_store: Path, tmp_path: Path) -> None:
    runner = run_file(name, demo_store, tmp_path)
    assert not runner.failures, f"{len(runner.failures)} broken examples:\n" + "\n".join(runner.failures)
    assert runner.ran >= 8, f"{name}: only {runner.ran} examples ran; is the block syntax right?"


def test_readme_curl_examples_work(demo_store: Path, tmp_path: Path) -> None:
    runner = run_file("README.md", demo_store, tmp_path, curl_only=True)
    assert not runner.failures, "\n".join(runner.failures)
    assert runner.ran >= 4


def test_a_wrong_example_fails(demo_store: Path, tmp_path: Path) -> None:
    """The runner itself: a response, status or output that differs from the doc is reported."""
    doc = """
```http
POST /v1/collections/products/_search

{"size": 0, "query": {"term": {"category": "Books"}}}
```

```json
{"hits": {"total": {"value": 1, "relation": "eq"}}}
```

```http
# expect 400
GET /v1/collections/products/_search
```

```http
GET /v1/collections/nope/_search
```

```yaml
a: 1
```
"""
    with (
        demo_services(demo_store, tmp_path / "store") as services,
        TestClient(create_app(services.settings, services)) as client,
    ):
        runner = DocRunner("wrong.md", client, tmp_path, None)
        runner.run(doc)
    assert [f.split(":")[1] for f in runner.failures] == ["2", "12", "17", "21"], runner.failures
    assert "$.hits.total.value: expected 1, got" in runner.failures[0]


def test_mismatches() -> None:
    actual = {"a": 1, "b": [1.0, 2.5, 3.25], "c": {"d": None, "e": "x"}, "took": 5, "f": True}
    assert mismatches({"b": [1.0, 2.5], "c": {"e": "x"}, "took": 99}, actual) == []
    assert mismatches({"b": [1.0, 2.5, 3.2]}, actual) == []  # to the decimals shown
    assert mismatches({"b": [1.0, 2.5, 3.4]}, actual) == ["$.b[2]: expected 3.4, got 3.25"]
    assert mismatches({"a": 1.0}, actual) == ["$.a: expected 1.0, got 1"]
    assert mismatches({"f": 1}, actual) == ["$.f: expected 1, got true"]
    assert mismatches({"b": [1.0, 2.5, 3.25, 4.0]}, actual) == ["$.b: expected at least 4 items, got 3"]
    assert mismatches({"z": 1}, actual)[0].startswith("$: missing key 'z'")


def test_request_parsing() -> None:
    request = parse_http(
        "# a comment\n# expect 409\nPOST /v1/x\nContent-Type: application/x-ndjson\n\n{}\n{}"
    )
    assert request == Request("POST", "/v1/x", {"content-type": "application/x-ndjson"}, b"{}\n{}\n", 409)
    curl = parse_curl(
        f"curl -s -XPOST {DOC_URL}/v1/events -H 'content-type: application/json' -d '{{\"a\": 1}}'"
    )
    assert curl == Request("POST", "/v1/events", {"content-type": "application/json"}, b'{"a": 1}', None)
    assert commands("# c\naggregata import x \\\n    f.ndjson  # note\n\ncurl -d '{\"a\":\n 1}' x") == [
        "aggregata import x f.ndjson  # note",
        "curl -d '{\"a\":\n 1}' x",
    ]
