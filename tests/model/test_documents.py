from __future__ import annotations

import itertools
from datetime import UTC, datetime

from aggregata.model.documents import infer_type, prepare_documents
from aggregata.model.mapping import Field, FieldType, Mapping

_ids = itertools.count()


def new_id() -> str:
    return f"gen-{next(_ids)}"


def prepare(docs: list[object], mapping: Mapping | None = None, **kw: object):  # type: ignore[no-untyped-def]
    return prepare_documents(docs, mapping or Mapping(), new_id=new_id, **kw)  # type: ignore[arg-type]


def test_dynamic_inference_follows_elasticsearch() -> None:
    batch = prepare(
        [
            {
                "s": "x",
                "d": "2024-03-01T10:00:00Z",
                "day": "2024-03-01",
                "i": 3,
                "f": 1.5,
                "b": True,
                "o": {"k": "v", "deep": {"n": 1}},
                "tags": ["a", "b"],
                "items": [{"sku": "a", "qty": 1}],
            }
        ]
    )
    m = batch.mapping
    assert [(f.name, f.type, f.array) for f in m] == [
        ("s", FieldType.KEYWORD, False),
        ("d", FieldType.DATE, False),
        ("day", FieldType.DATE, False),
        ("i", FieldType.LONG, False),
        ("f", FieldType.DOUBLE, False),
        ("b", FieldType.BOOLEAN, False),
        ("o.k", FieldType.KEYWORD, False),
        ("o.deep.n", FieldType.LONG, False),
        ("tags", FieldType.KEYWORD, True),
        ("items", FieldType.NESTED, True),
    ]
    items = m.resolve("items").properties
    assert items is not None and items.resolve("qty").type is FieldType.LONG
    row = batch.rows[0]
    assert row["d"] == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert row["o.deep.n"] == 1 and row["tags"] == ["a", "b"]
    assert row["items"] == [{"sku": "a", "qty": 1}]


def test_conflicting_value_rejects_only_that_document() -> None:
    batch = prepare([{"n": 1}, {"n": "not a number"}, {"n": 2.0}, {"n": True}, {"n": 3}])
    assert [r["n"] for r in batch.rows] == [1, 2, 3]
    assert [e.position for e in batch.errors] == [1, 3]
    assert "cannot hold 'not a number'" in batch.errors[0].reason


def test_long_field_receiving_a_fraction_becomes_double() -> None:
    batch = prepare([{"n": 1}, {"n": 2.5}, {"n": [3, 4.5]}])
    assert batch.mapping.resolve("n").type is FieldType.DOUBLE and batch.mapping.resolve("n").array
    assert not batch.errors and [r["n"] for r in batch.rows] == [1, 2.5, [3.0, 4.5]]


def test_rejected_document_does_not_add_fields() -> None:
    batch = prepare([{"a": 1, "b": "x"}, {"a": "bad", "c": 1}])
    assert "c" not in batch.mapping
    assert len(batch.errors) == 1


def test_scalar_then_array_widens_field() -> None:
    batch = prepare([{"t": "a"}, {"t": ["b", "c"]}])
    assert batch.mapping.resolve("t").array
    assert not batch.errors


def test_object_vs_value_conflict() -> None:
    batch = prepare([{"a": {"b": 1}}, {"a": 5}])
    assert batch.errors and "object" in batch.errors[0].reason


def test_hostile_key_rejected_per_document() -> None:
    batch = prepare([{'a"; DROP TABLE x; --': 1}, {"ok": 1}])
    assert [e.position for e in batch.errors] == [0]
    assert "invalid field name" in batch.errors[0].reason
    assert "ok" in batch.mapping and len(batch.mapping) == 1


def test_strict_mapping_rejects_new_fields() -> None:
    mapping = Mapping({"a": Field("a", FieldType.LONG)})
    batch = prepare([{"a": 1}, {"a": 1, "b": 2}], mapping, dynamic=False)
    assert len(batch.rows) == 1 and "strict" in batch.errors[0].reason


def test_ids_and_duplicates_within_batch() -> None:
    batch = prepare([{"_id": "x", "v": 1}, {"_id": "x", "v": 2}, {"v": 3}, {"_id": 7}])
    assert batch.ids[0] == "x" and batch.ids[2] == "7"
    assert batch.duplicates == [1]
    assert batch.ids[1].startswith("gen-")


def test_geo_points_and_vectors() -> None:
    mapping = Mapping.from_es(
        {"properties": {"loc": {"type": "geo_point"}, "v": {"type": "dense_vector", "dims": 2}}}
    )
    batch = prepare(
        [
            {"loc": {"lat": 1, "lon": 2}, "v": [1, 2]},
            {"loc": "3.5,4"},
            {"loc": [5, 6]},
            {"loc": {"lat": 91, "lon": 0}},
            {"v": [1, 2, 3]},
        ],
        mapping,
    )
    assert [r.get("loc") for r in batch.rows] == [
        {"lat": 1.0, "lon": 2.0},
        {"lat": 3.5, "lon": 4.0},
        {"lat": 6.0, "lon": 5.0},
    ]
    assert [e.position for e in batch.errors] == [3, 4]


def test_null_and_empty_arrays_are_missing() -> None:
    batch = prepare([{"a": None, "b": [], "c": 1}])
    assert set(batch.mapping.fields) == {"c"}


def test_dates_epoch_millis_and_offsets() -> None:
    mapping = Mapping({"d": Field("d", FieldType.DATE)})
    batch = prepare([{"d": 0}, {"d": "2024-03-01T10:00:00+02:00"}, {"d": "yesterday"}], mapping)
    assert batch.rows[0]["d"] == datetime(1970, 1, 1, tzinfo=UTC)
    assert batch.rows[1]["d"] == datetime(2024, 3, 1, 8, tzinfo=UTC)
    assert batch.errors[0].position == 2


def test_infer_type_bool_before_int() -> None:
    assert infer_type(True) is FieldType.BOOLEAN
    assert infer_type(1) is FieldType.LONG
