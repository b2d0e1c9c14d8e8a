"""Pure request language: Elasticsearch query/aggregation DSL parsed into typed plans."""
