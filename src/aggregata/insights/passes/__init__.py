"""Pure rewrite passes over insight plans (no IO): e.g. choosing a rollup."""
