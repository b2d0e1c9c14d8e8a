from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregata.errors import MappingError
from aggregata.model.mapping import Field, FieldType, Mapping, validate_field_name


def test_from_es_flattens_objects_and_keeps_nested() -> None:
    mapping = Mapping.from_es(
        {
            "properties": {
                "user": {"properties": {"country": {"type": "keyword"}, "age": {"type": "integer"}}},
                "items": {
                    "type": "nested",
                    "properties": {"sku": {"type": "keyword"}, "qty": {"type": "long"}},
                },
                "embedding": {"type": "dense_vector", "dims": 3},
                "loc": {"type": "geo_point"},
            }
        }
    )
    assert mapping.resolve("user.country").type is FieldType.KEYWORD
    assert mapping.resolve("user.age").type is FieldType.LONG
    items = mapping.resolve("items")
    assert items.type is FieldType.NESTED and items.properties is not None
    assert items.properties.resolve("qty").type is FieldType.LONG
    assert mapping.resolve("embedding").dims == 3
    es = mapping.to_es()
    assert es["properties"]["user"]["properties"]["country"] == {"type": "keyword"}
    assert es["properties"]["items"]["type"] == "nested"


def test_json_round_trip_keeps_arrays() -> None:
    mapping = Mapping({"tags": Field("tags", FieldType.KEYWORD, array=True)})
    assert Mapping.from_json(mapping.to_json()) == mapping


@pytest.mark.parametrize(
    "spec,message",
    [
        ({"a": {"type": "geo_shape"}}, "no handler for type [geo_shape]"),
        ({"v": {"type": "dense_vector"}}, "dims"),
        (
            {"n": {"type": "nested", "properties": {"m": {"type": "nested"}}}},
            "nested inside nested",
        ),
        ({'a"; DROP TABLE x; --': {"type": "keyword"}}, "invalid field name"),
    ],
)
def test_bad_mappings_are_rejected(spec: dict[str, object], message: str) -> None:
    with pytest.raises(MappingError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Mapping.from_es({"properties": spec})


@pytest.mark.parametrize("name", ['a"; DROP TABLE x; --', "", "a..b", ".a", "a b", "_id", "x\n", "a'b", "é"])
def test_hostile_field_names_rejected(name: str) -> None:
    with pytest.raises(MappingError):
        validate_field_name(name)


@pytest.mark.parametrize("name", ["a", "user.country", "$browser", "utm-source", "A1_b.c2", "@timestamp"])
def test_plain_names_accepted(name: str) -> None:
    assert validate_field_name(name) == name


@given(st.text(min_size=1, max_size=30))
def test_validated_names_only_contain_safe_characters(name: str) -> None:
    try:
        validate_field_name(name)
    except MappingError:
        return
    assert all(c.isascii() and (c.isalnum() or c in "._-$@") for c in name)
