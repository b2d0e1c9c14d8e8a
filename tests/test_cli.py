"""The CLI as a user runs it: generate files, import every format, errors."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from aggregata.storage.duckdb import DuckDBEngine


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregata.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_generate_then_import_every_format(tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = run(
        "generate",
        "--events",
        "3000",
        "--products",
        "200",
        "--out",
        str(tmp_path / "demo"),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    events_file = tmp_path / "demo" / "events.ndjson"
    assert len(events_file.read_bytes().splitlines()) == 3000

    r = run("import", "events", str(events_file), "--events", "--data-dir", str(data), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "stored 3,000" in r.stderr

    products = [
        orjson.loads(line) for line in (tmp_path / "demo" / "products.ndjson").read_bytes().splitlines()
    ]
    (tmp_path / "p.json").write_bytes(orjson.dumps(products))
    with (tmp_path / "p.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["_id", "name", "price", "in_stock"])
        writer.writeheader()
        for p in products:
            writer.writerow({k: str(p[k]).lower() if k == "in_stock" else p[k] for k in writer.fieldnames})
    pq.write_table(
        pa.Table.from_pylist([{k: p[k] for k in ("_id", "name", "price")} for p in products]),
        tmp_path / "p.parquet",
    )
    for name in ("p.json", "p.csv", "p.parquet"):
        r = run(
            "import",
            name.replace(".", "_"),
            str(tmp_path / name),
            "--data-dir",
            str(data),
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr
    # Importing the same file again stores nothing twice.
    r = run("import", "p_csv", str(tmp_path / "p.csv"), "--data-dir", str(data), cwd=tmp_path)
    assert "stored 0, duplicates 200" in r.stderr

    engine = DuckDBEngine(data / "aggregata.duckdb")
    try:
        assert engine.count("events") == 3000
        assert {c.name: engine.count(c.name) for c in engine.list_collections()} == {
            "events": 3000,
            "p_json": 200,
            "p_csv": 200,
            "p_parquet": 200,
        }
        csv_mapping = engine.get_collection("p_csv").mapping
        assert csv_mapping.resolve("price").type.value == "double"
        assert csv_mapping.resolve("in_stock").type.value == "boolean"
    finally:
        engine.close()


def test_import_reports_bad_rows(tmp_path: Path) -> None:
    f = tmp_path / "x.ndjson"
    f.write_text('{"a": 1}\n{"a": "x"}\nnot json\n')
    r = run("import", "x", str(f), "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert r.returncode == 0
    assert "stored 1, duplicates 0, failed 2" in r.stderr
    assert "item 1" in r.stderr and "item 2" in r.stderr


def test_unknown_format_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "x.xml"
    f.write_text("<a/>")
    r = run("import", "x", str(f), "--data-dir", str(tmp_path / "d"), cwd=tmp_path)
    assert r.returncode == 2 and "cannot tell the format" in r.stderr
