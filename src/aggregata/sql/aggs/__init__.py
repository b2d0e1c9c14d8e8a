"""Aggregation nodes → sqlglot trees: metric columns, bucket keys, date buckets, the plan."""
