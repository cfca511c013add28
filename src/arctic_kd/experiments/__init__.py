"""Experiments of many runs: one runner (planning, run records, reuse), their statistics and tables, and
its two plans: `arctic demo` and `arctic bench`."""
