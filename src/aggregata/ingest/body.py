"""Reading request bodies and files of documents: JSON arrays, NDJSON, CSV, Parquet.

Bodies: a JSON array (or a single object) or NDJSON. One unreadable NDJSON line is an
error for that item, not for the request; only a body that cannot be read at all is a 400.
Files stream in batches, so files larger than memory import in bounded memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from aggregata.errors import ParsingError
from aggregata.model.documents import ItemError

NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/json-lines",
)


@dataclass
class Parsed:
    """Documents read from a body, their positions, and the items that could not be read."""

    docs: list[Any] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)


def parse_ndjson_lines(lines: list[bytes], first: int = 0) -> Parsed:
    parsed = Parsed()
    position = first
    for line in lines:
        if not line.strip():
            continue
        try:
            parsed.docs.append(orjson.loads(line))
            parsed.positions.append(position)
        except orjson.JSONDecodeError as exc:
            parsed.errors.append(ItemError(position, "parsing_exception", f"line is not valid JSON: {exc}"))
        position += 1
    return parsed


def parse_body(body: bytes, content_type: str | None) -> Parsed:
    """Documents from an HTTP body; NDJSON by content type or when JSON parsing fails by line."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in NDJSON_TYPES:
        return parse_ndjson_lines(body.splitlines())
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        lines = body.splitlines()
        if len(lines) > 1:
            return parse_ndjson_lines(lines)
        raise ParsingError("the body is neither JSON nor NDJSON", type="x_content_parse_exception") from None
    docs = data if isinstance(data, list) else [data]
    return Parsed(docs=docs, positions=list(range(len(docs))))


FORMATS = ("ndjson", "json", "csv", "parquet")


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    aliases = {
        "jsonl": "ndjson",
        "ndjson": "ndjson",
        "json": "json",
        "csv": "csv",
        "parquet": "parquet",
        "pq": "parquet",
    }
    if suffix not in aliases:
        raise ParsingError(
            f"cannot tell the format of [{path.name}]; pass --format one of {', '.join(FORMATS)}"
        )
    fmt = aliases[suffix]
    if fmt == "json":
        with path.open("rb") as fh:
            head = fh.read(4096).lstrip()
        if head[:1] == b"{" and b"\n{" in head:
            return "ndjson"
    return fmt


@dataclass
class Chunk:
    """A slice of a file as an NDJSON body; ``first`` is the position of its first line."""

    body: bytes
    first: int
    count: int


def read_batches(fh: BinaryIO, fmt: str, batch_size: int = 10_000) -> Iterator[Chunk]:
    """Stream an open binary file as NDJSON chunks of ``batch_size`` documents.

    Every format becomes NDJSON so one ingest path (with its columnar fast path) serves
    files and HTTP alike. ``fh.tell()`` between chunks is how far the reader got.
    """
    readers = {"ndjson": _ndjson, "json": _json, "csv": _csv, "parquet": _parquet}
    if fmt not in readers:
        raise ParsingError(f"unknown format [{fmt}]; use one of {', '.join(FORMATS)}")
    yield from readers[fmt](fh, batch_size)


def _encode(docs: list[Any], first: int) -> Chunk:
    body = b"\n".join(orjson.dumps(d, default=str) for d in docs)
    return Chunk(body, first, len(docs))


def _ndjson(fh: BinaryIO, batch_size: int) -> Iterator[Chunk]:
    lines: list[bytes] = []
    position = 0
    for line in fh:
        if not line.strip():
            continue
        lines.append(line if line.endswith(b"\n") else line + b"\n")
        if len(lines) >= batch_size:
            yield Chunk(b"".join(lines), position, len(lines))
            position += len(lines)
            lines = []
    if lines:
        yield Chunk(b"".join(lines), position, len(lines))


def _json(fh: BinaryIO, batch_size: int) -> Iterator[Chunk]:
    """A JSON array file. Read whole: a single JSON document cannot be streamed by orjson;
    large files should be NDJSON, which ``detect_format`` recognises."""
    data = orjson.loads(fh.read())
    docs = data if isinstance(data, list) else [data]
    for start in range(0, len(docs), batch_size):
        yield _encode(docs[start : start + batch_size], start)


def _csv_value(text: str) -> Any:
    """CSV cells are text; numbers and booleans are recognised so columns get useful types."""
    if text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _csv(fh: BinaryIO, batch_size: int) -> Iterator[Chunk]:
    reader = csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8", newline=""))
    docs: list[Any] = []
    first = 0
    for row in reader:
        docs.append({k: c for k, v in row.items() if k and (c := _csv_value(v)) is not None})
        if len(docs) >= batch_size:
            yield _encode(docs, first)
            first += len(docs)
            docs = []
    if docs:
        yield _encode(docs, first)


def _parquet(fh: BinaryIO, batch_size: int) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    position = 0
    for record_batch in pq.ParquetFile(fh).iter_batches(batch_size=batch_size):
        docs = [{k: v for k, v in row.items() if v is not None} for row in record_batch.to_pylist()]
        yield _encode(docs, position)
        position += len(docs)
