"""codeatlas benchmarks: search latency and recall, ingest, caches (``python -m benchmarks``).

Not part of the test suite: timings vary with the machine, so nothing here asserts on them.
``python -m benchmarks --small`` runs in under two minutes; ``--full`` loads 100k rows per
dimension and writes ``docs/benchmarks.md``, ``docs/benchmarks.json`` and ``docs/img/``.
"""
