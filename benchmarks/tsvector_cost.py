"""The per-row cost of the code-aware tsvector, against plain to_tsvector on the same chunks.

    python -m benchmarks.tsvector_cost [--dsn DSN] [--chunks 2000] [--repeats 7]

Every insert or update of a text-bearing row computes its generated ``search_tsv`` with
``codeatlas_code_tsvector`` (migration 20261203000001). This cuts the standard library's
``.py`` files (sorted by path) into chunks of 1 500 characters, as the indexer's chunks
are, and times on the server, in the same run, alternating batch by batch:

* ``to_tsvector('english', chunk)``: the baseline, no code-aware splitting;
* ``codeatlas_code_tsvector('english', chunk)``: the migrated function;
* the function as it was before it was made cheaper (its definition is kept below, created
  in ``pg_temp``), so the before/after ratio is measured, not remembered.

It also checks that the migrated function gives the same tsvector as the earlier one for
every chunk (same lexemes, positions and weights), so the ranking is unchanged. Prints
the median time per chunk of each and its ratio to to_tsvector.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Final

import codeatlas
from codeatlas.indexer import DEFAULT_EXCLUDE_DIRS, stdlib_path

from .hybrid import connected

CHUNK: Final = 1500
BATCH: Final = 100

#: codeatlas_code_words as first written (six regexp passes; 0.2.0 development), created in
#: pg_temp as the "before" of the comparison.
BEFORE: Final = r"""
CREATE FUNCTION pg_temp.code_words_before(body text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
SELECT regexp_replace(capped, '([[:alnum:]])_+(?=[[:alnum:]])', '\1', 'g')
       || ' '
       || translate(
            regexp_replace(
              regexp_replace(
                regexp_replace(
                  regexp_replace(capped, '([[:lower:][:digit:]])(?=[[:upper:]])', '\1 ', 'g'),
                  '([[:upper:]])(?=[[:upper:]][[:lower:]])', '\1 ', 'g'),
                '([[:alpha:]])(?=[[:digit:]])', '\1 ', 'g'),
              '([[:digit:]])(?=[[:alpha:]])', '\1 ', 'g'),
            './\:', '    ')
  FROM (SELECT regexp_replace(left(coalesce(body, ''), 100000), '[^[:space:]]{200,}', ' ', 'g')
               AS capped) AS input
$fn$
"""

VARIANTS: Final = {
    "to_tsvector": "to_tsvector('english', c)",
    "codeatlas_code_tsvector, before": "to_tsvector('english', pg_temp.code_words_before(c))",
    "codeatlas_code_tsvector": "codeatlas_code_tsvector('english', c)",
}


def chunks(count: int) -> list[str]:
    """Return the first *count* chunks of CHUNK characters of the stdlib's .py files."""
    root = stdlib_path()
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if any(part in DEFAULT_EXCLUDE_DIRS for part in path.relative_to(root).parts[:-1]):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        found.extend(text[i : i + CHUNK] for i in range(0, len(text), CHUNK))
        if len(found) >= count:
            break
    return [c.replace("\x00", "") for c in found[:count]]


async def measure(atlas: codeatlas.Atlas, count: int, repeats: int) -> dict[str, float]:
    """Return the median µs per chunk of each variant (and print the comparison)."""
    bodies = chunks(count)
    async with atlas.transaction() as tx:
        executor = tx.executor
        await executor.execute(BEFORE)
        differing = await executor.fetchval(
            "SELECT count(*) FROM unnest($1::text[]) AS c "
            "WHERE codeatlas_code_tsvector('english', c) "
            "IS DISTINCT FROM to_tsvector('english', pg_temp.code_words_before(c))",
            bodies,
        )
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        names = list(VARIANTS)
        # the load of a shared machine changes within seconds: each repeat times every
        # variant on each batch of BATCH chunks in turn (order rotating), and sums them
        batches = [bodies[i : i + BATCH] for i in range(0, len(bodies), BATCH)]
        for repeat in range(repeats + 1):  # the first round warms up and is discarded
            spent = dict.fromkeys(names, 0.0)
            for b, batch in enumerate(batches):
                shift = (repeat + b) % len(names)
                for name in names[shift:] + names[:shift]:
                    sql = f"SELECT sum(length({VARIANTS[name]})) FROM unnest($1::text[]) AS c"
                    started = time.perf_counter()
                    await executor.fetchval(sql, batch)
                    spent[name] += time.perf_counter() - started
            if repeat:
                for name in names:
                    times[name].append(spent[name] / len(bodies) * 1e6)
    medians = {name: statistics.median(values) for name, values in times.items()}
    size = sum(len(b) for b in bodies) / len(bodies)
    print(
        f"{len(bodies)} chunks of the stdlib's .py files (mean {size:.0f} characters), "
        f"{repeats} repeats; chunks whose tsvector differs from the earlier function's: "
        f"{differing}"
    )
    base = medians["to_tsvector"]
    for name, value in medians.items():
        print(f"{name:36} {value:8.1f} µs per chunk  {value / base:5.2f}x to_tsvector")
    before, after = medians["codeatlas_code_tsvector, before"], medians["codeatlas_code_tsvector"]
    print(f"codeatlas_code_tsvector now / before: {after / before:.2f}x")
    medians["differing"] = float(differing)
    medians["chunks"] = float(len(bodies))
    return medians


async def main(dsn: str | None, count: int, repeats: int) -> None:
    async with connected(dsn) as atlas:
        await measure(atlas, count, repeats)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if args.chunks < 1 or args.repeats < 1:
        sys.exit("--chunks and --repeats must be at least 1")
    asyncio.run(main(args.dsn, args.chunks, args.repeats))
