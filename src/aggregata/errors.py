"""The error types every layer raises, mapped to HTTP statuses in one place (api/errors.py).

Pure layers raise these instead of HTTP exceptions so the compiler stays usable from the
CLI and tests; each carries an Elasticsearch-style ``type`` so clients can branch on it.
"""

from __future__ import annotations


class AggregataError(Exception):
    """Base class: ``type`` is a stable machine-readable name, ``reason`` a human one."""

    status = 500
    type = "internal_error"

    def __init__(self, reason: str, *, type: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if type is not None:
            self.type = type


class BadRequest(AggregataError):
    """The request is readable but invalid: unknown field, bad parameter, wrong type."""

    status = 400
    type = "illegal_argument_exception"


class ParsingError(BadRequest):
    """The request body does not follow the DSL grammar."""

    type = "parsing_exception"


class MappingError(BadRequest):
    """A document or mapping conflicts with the collection's mapping."""

    type = "mapper_parsing_exception"


class NotFound(AggregataError):
    status = 404
    type = "resource_not_found_exception"


class CollectionNotFound(NotFound):
    type = "index_not_found_exception"

    def __init__(self, name: str) -> None:
        super().__init__(f"no such collection [{name}]")
        self.name = name


class Conflict(AggregataError):
    status = 409
    type = "resource_already_exists_exception"


class PayloadTooLarge(AggregataError):
    status = 413
    type = "content_too_long_exception"


class QueryTimeout(AggregataError):
    status = 504
    type = "timeout_exception"
