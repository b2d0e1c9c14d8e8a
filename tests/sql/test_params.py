"""The seam between compiled trees and engines, fuzzed: values bound through ``Params`` and
field names quoted as identifiers come back exactly, on both backends.

Each backend gets its own way of carrying a value (DuckDB binds Python objects, ClickHouse
parses escaped text) and of quoting a name (ClickHouse also stores dots differently), so
this is where an escaping bug would let user text change a statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from aggregata.errors import MappingError
from aggregata.model.mapping import validate_field_name
from aggregata.sql.params import Params
from aggregata.sql.query import col
from aggregata.storage.engine import Engine
from tests.backends import BACKENDS, open_engine

SEAM = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", params=BACKENDS)
def seam_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chdb_dir = request.getfixturevalue("chdb_dir") if request.param == "clickhouse" else None
    engine = open_engine(request.param, tmp_path_factory.mktemp("seam"), chdb_dir=chdb_dir)
    yield engine
    engine.close()


def _select_bound(engine: Engine, value: Any) -> Any:
    params = Params()
    tree = exp.select(exp.alias_(params.bind(value), "v", quoted=True))
    return engine.query(tree, params.values).column("v")[0].as_py()


@SEAM
@given(value=st.text())
def test_any_string_round_trips(seam_engine: Engine, value: str) -> None:
    assert _select_bound(seam_engine, value) == value


@SEAM
@given(
    value=st.one_of(
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.datetimes(
            min_value=datetime(1900, 1, 1),
            max_value=datetime(2262, 1, 1),
            timezones=st.just(UTC),
        ),
    )
)
def test_typed_values_round_trip(seam_engine: Engine, value: Any) -> None:
    got = _select_bound(seam_engine, value)
    assert got == value and type(got) is type(value)


def _is_field_name(name: str) -> bool:
    try:
        validate_field_name(name)
    except MappingError:
        return False
    return True


_SEGMENT = st.from_regex(r"\A[A-Za-z0-9$@][A-Za-z0-9_$@\-]{0,20}\Z")
field_names = st.lists(_SEGMENT, min_size=1, max_size=4).map(".".join).filter(_is_field_name)


@SEAM
@given(name=field_names)
def test_field_names_round_trip_as_quoted_identifiers(seam_engine: Engine, name: str) -> None:
    """A name is both an alias and a column reference; the result column keeps the name."""
    inner = exp.select(exp.alias_(exp.Literal.string("ok"), name, quoted=True))
    tree = exp.select(col(name)).from_(inner.subquery("t"))
    result = seam_engine.query(tree)
    assert result.column_names == [name]
    assert result.column(0).to_pylist() == ["ok"]
