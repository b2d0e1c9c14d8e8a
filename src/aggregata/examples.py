"""Copy-paste examples printed by ``make run`` before the server starts."""

from __future__ import annotations

import argparse

EXAMPLES = """
Aggregata is starting on http://{base} (first start seeds demo data; give it a few seconds).

  curl -s http://{base}/health
  curl -s http://{base}/v1/collections
  curl -s -XPOST http://{base}/v1/collections/products/_search -H 'content-type: application/json' \\
       -d '{{"query": {{"term": {{"category": "Electronics"}}}}, "size": 3, "_source": ["name", "price"]}}'
  curl -s -XPOST http://{base}/v1/events -H 'content-type: application/json' \\
       -d '{{"event": "pageview", "distinct_id": "u-1", "properties": {{"country": "DE"}}}}'
  open http://{base}/docs   # every endpoint, with examples
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()
    print(EXAMPLES.format(base=f"{args.host}:{args.port}"))


if __name__ == "__main__":
    main()
