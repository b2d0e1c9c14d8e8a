"""``aggregata rollup refresh``: rebuilds rollups in the data directory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from aggregata.cli import app
from aggregata.insights.rollup_service import RollupService
from aggregata.insights.service import InsightsService
from aggregata.storage.duckdb import DuckDBEngine
from tests.insights.conftest import load


def _count(engine: DuckDBEngine) -> list[int]:
    insights = InsightsService(engine, RollupService(engine), clock=lambda: datetime(2026, 11, 1, tzinfo=UTC))
    out = insights.trends({"series": [{}], "date_from": "2026-10-30", "date_to": "2026-10-31"})
    assert out["source"] == "rollup:day"
    return list(out["series"][0]["data"])


def test_rollup_refresh(tmp_path: Path) -> None:
    engine = DuckDBEngine(tmp_path / "aggregata.duckdb")
    RollupService(engine)  # maintains rollups on this engine's writes
    stamps = [f"2026-10-{30 + i % 2}T10:00:00Z" for i in range(9)]
    events = [{"event": "e", "distinct_id": f"u{i}", "timestamp": t} for i, t in enumerate(stamps)]
    load(engine, "events", events)
    engine.query_sql('DELETE FROM "_rollup_events_day"')
    assert _count(engine) == [0, 0]
    engine.close()

    runner = CliRunner()
    args = ["rollup", "refresh", "--data-dir", str(tmp_path), "--from", "2026-10-31", "--to", "2026-10-31"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    engine = DuckDBEngine(tmp_path / "aggregata.duckdb")
    assert _count(engine) == [0, 4]
    engine.close()

    result = runner.invoke(app, ["rollup", "refresh", "--data-dir", str(tmp_path), "--collection", "events"])
    assert result.exit_code == 0, result.output
    engine = DuckDBEngine(tmp_path / "aggregata.duckdb")
    assert _count(engine) == [5, 4]
    engine.close()
    missing = runner.invoke(app, ["rollup", "refresh", "--data-dir", str(tmp_path), "--collection", "nope"])
    assert missing.exit_code != 0
