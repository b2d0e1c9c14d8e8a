"""Search: running ``_search`` requests (hits, totals, aggregations) against an engine."""
