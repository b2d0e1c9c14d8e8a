"""Runtime configuration, read from ``AGGREGATA_*`` environment variables or CLI flags.

Only the composition roots (``api.app.create_app``, ``cli``) read settings; everything
else receives what it needs as arguments, which keeps the compiler pure and testable.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Server settings. Each field ``x`` is also the environment variable ``AGGREGATA_X``."""

    model_config = SettingsConfigDict(env_prefix="AGGREGATA_", extra="ignore")

    host: str = Field("127.0.0.1", description="Interface to bind; localhost unless told otherwise.")
    port: int = Field(8000, description="TCP port of the HTTP API.")
    data_dir: Path = Field(Path("./data"), description="Where the DuckDB database file lives.")
    max_body_bytes: int = Field(
        100 * 1024 * 1024, description="Largest accepted request body; larger bodies get 413."
    )
    query_timeout_s: float = Field(30.0, description="Queries running longer are cancelled (504).")
    demo: bool = Field(False, description="Seed demo data on first start when the store is empty.")
    demo_events: int = Field(200_000, description="Number of demo events seeded by --demo.")
    redis_url: str | None = Field(None, description="Redis URL for the shared query cache.")
    memory_limit: str | None = Field(None, description="DuckDB memory_limit, e.g. '4GB'.")
    threads: int | None = Field(None, description="DuckDB worker threads (default: all cores).")
    checkpoint_threshold: str = Field(
        "256MB",
        description="Write-ahead log size at which DuckDB checkpoints. Larger: fewer pauses while"
        " ingesting (DuckDB's 16MB checkpoints every half second at 100k events/s), more memory"
        " and a longer log replay after a crash.",
    )

    @property
    def database_path(self) -> Path:
        return self.data_dir / "aggregata.duckdb"
