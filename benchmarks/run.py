"""Orchestration: server, data, ingest, load, bulk load, rebuild, tune, sweep, strategies,
caches, server settings, report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import codeatlas
from codeatlas.config import Settings
from codeatlas.search import recommended_lists

from . import caches, ingest, provenance, report, strategies
from .data import Dataset, make_dataset, other_queries
from .measure import summarise
from .search import SweepPlan, breakdown, sweep, uses_index
from .tables import TABLES, TableSpec, insert_rows

__all__ = ["PROFILES", "Profile", "main"]

console = Console(stderr=True)

#: Probes swept (those below the index's lists, then lists itself, plus the tuned value).
SWEEP_PROBES: Final = (1, 2, 4, 8, 16, 32)
#: 1 and 8 clients (32 on a 2-CPU machine only queued: QPS levelled off from 8 on).
CONCURRENCIES: Final = (1, 8)
#: Server settings for the throwaway embedded server beyond the ones codeatlas sizes for
#: the machine itself (shared_buffers, ...): three pools of 32 need connections.
EMBEDDED_SETTINGS: Final = {"max_connections": "200"}
#: PostgreSQL's defaults of the settings codeatlas sizes, for the comparison.
POSTGRES_DEFAULTS: Final = {
    "shared_buffers": "128MB",
    "effective_cache_size": "4GB",
    "maintenance_work_mem": "64MB",
    "max_parallel_maintenance_workers": "2",
}
_LOAD_CHUNK: Final = 10_000
#: The pools' command_timeout: tune's exact pass sends all its queries in one statement,
#: 200 exact scans of 100k 1536-d rows, which outlasts the 60 s default on a busy machine.
COMMAND_TIMEOUT: Final = 1800.0
#: Phases a run can leave out (``--skip``): the semantic and similarity cache benchmarks,
#: and the sized-against-default server settings comparison.
SKIPPABLE: Final = ("caches", "settings")
DEFAULT_SEED: Final = 20250101


@dataclass(frozen=True, slots=True)
class Profile:
    """The size of one benchmark run."""

    name: str
    rows: int
    queries: int
    rounds: int
    block: int
    breakdown_rounds: int
    breakdown_block: int
    ingest_rows: int
    ingest_rounds: int
    cache_entries: int
    cache_lookups: int
    similarity_queries: int
    #: queries per strategy sweep point (each of: held-out c=1, c=8, shifted c=1)
    strategy_queries: int
    tune_queries: int
    cache_entries_large: int
    settings_queries: int


PROFILES: Final = {
    "small": Profile(
        name="small",
        rows=10_000,
        queries=300,
        rounds=2,
        block=15,
        breakdown_rounds=3,
        breakdown_block=30,
        ingest_rows=500,
        ingest_rounds=1,
        cache_entries=2_000,
        cache_lookups=50,
        similarity_queries=30,
        strategy_queries=100,
        tune_queries=200,
        cache_entries_large=10_000,
        settings_queries=50,
    ),
    "full": Profile(
        name="full",
        rows=100_000,
        queries=1_000,
        rounds=3,
        block=50,
        breakdown_rounds=4,
        breakdown_block=60,
        ingest_rows=5_000,
        ingest_rounds=2,
        cache_entries=10_000,
        cache_lookups=200,
        similarity_queries=200,
        strategy_queries=120,
        tune_queries=200,
        cache_entries_large=100_000,
        settings_queries=100,
    ),
}


class Steps:
    """Rich progress: one bar per phase."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        #: the 1-minute load average after each phase (other work on the machine)
        self.loads: list[float] = []

    @contextlib.contextmanager
    def phase(self, description: str, total: int) -> Iterator[Callable[[], None]]:
        """Show a bar for one phase; yield the function that advances it by one."""
        task = self._progress.add_task(description, total=total)
        started = time.perf_counter()
        try:
            yield lambda: self._progress.advance(task)
        finally:
            self._progress.update(task, completed=total)
            self.loads.append(os.getloadavg()[0])
            self._progress.console.log(f"{description}: {time.perf_counter() - started:.1f}s")


def _sweep_probes(lists: int, tuned: int) -> list[int]:
    chosen = {p for p in SWEEP_PROBES if p < lists}
    if lists <= max(SWEEP_PROBES):
        chosen.add(lists)
    chosen.add(tuned)
    return sorted(chosen)


def _normalised(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def _check_same_sql(spec: TableSpec, atlas: codeatlas.Atlas) -> None:
    # the baselines must run the statement codeatlas sends (private helper: a check only)
    generated, _, _ = spec.repository(atlas)._prepare(None, None, False, batched=False, exact=False)
    if _normalised(generated) != _normalised(spec.search_sql):
        raise SystemExit(
            f"benchmarks/tables.py is out of date: search_similar on {spec.table} now sends\n"
            f"{generated}"
        )


async def _load(atlas: codeatlas.Atlas, spec: TableSpec, data: Dataset, steps: Steps) -> float:
    chunks = range(0, len(data.base), _LOAD_CHUNK)
    with steps.phase(f"{spec.dimensions}d: load {len(data.base):,} rows", len(chunks)) as advance:
        started = time.perf_counter()
        await insert_rows(atlas, spec, data.base, chunk=_LOAD_CHUNK, advance=advance)
        return len(data.base) / (time.perf_counter() - started)


async def _dataset(
    atlas: codeatlas.Atlas,
    dsn: str,
    spec: TableSpec,
    profile: Profile,
    seed: int,
    steps: Steps,
    results: dict[str, Any],
    skip: frozenset[str] = frozenset(),
) -> Any:
    """Run every per-table benchmark of *spec*; return held-out queries for later phases."""
    dim = spec.dimensions
    with steps.phase(f"{dim}d: generate data and exact top-10", 1) as advance:
        data = make_dataset(dim, profile.rows, profile.queries, seed=seed)
        advance()
    with steps.phase(f"{dim}d: ingest", profile.ingest_rounds * len(ingest.METHODS)) as advance:
        results["ingest"][str(dim)] = await ingest.ingest(
            atlas,
            spec,
            data.base[: profile.ingest_rows],
            rounds=profile.ingest_rounds,
            advance=advance,
        )
    started = time.perf_counter()
    load_rate = await _load(atlas, spec, data, steps)
    load_s = time.perf_counter() - started
    lists = recommended_lists(profile.rows)
    with steps.phase(f"{dim}d: rebuild (lists={lists}) and tune", 2) as advance:
        await atlas.executor.execute(f"ANALYZE {spec.table}")
        rebuilt = (await atlas.indexes.rebuild(spec.table, lists=lists, concurrently=False))[0]
        await atlas.executor.execute(f"ANALYZE {spec.table}")
        advance()
        if dim == 768:
            results["bulk_load"] = {
                "table": spec.table,
                "rows": len(data.base),
                "index_in_place": {
                    "load_s": load_s,
                    "build_s": rebuilt.seconds,
                    "total_s": load_s + rebuilt.seconds,
                },
                "bulk_load": await _bulk_load(atlas, spec, data),
            }
        tuned = (await atlas.indexes.tune(spec.table, target_recall=0.95))[0]
        advance()
    _check_same_sql(spec, atlas)
    row_of = {r["id"]: spec.row_number(r["key"]) for r in await atlas.executor.fetch(spec.keys_sql)}
    plan = SweepPlan(
        probes=_sweep_probes(rebuilt.lists, tuned.probes),
        concurrencies=CONCURRENCIES,
        rounds=profile.rounds,
        block=profile.block,
        breakdown_rounds=profile.breakdown_rounds,
        breakdown_block=profile.breakdown_block,
    )
    with steps.phase(f"{dim}d: search sweep", plan.steps()) as advance:
        rows = await sweep(atlas, dsn, spec, data, row_of, plan, advance)
    breakdown_probes = sorted({plan.probes[0], tuned.probes})
    with steps.phase(f"{dim}d: overhead breakdown", len(breakdown_probes)) as advance:
        parts = []
        for probes in breakdown_probes:
            parts.append(await breakdown(atlas, dsn, spec, data, probes, plan))
            advance()
    index_used = await uses_index(atlas, spec, data, tuned.probes)
    tuning, shifted = other_queries(
        data, seed=seed, tune=profile.tune_queries, shifted=profile.strategy_queries
    )
    with steps.phase(f"{dim}d: strategies", len(strategies.STRATEGIES)) as advance:
        results["strategies"][str(dim)] = await strategies.benchmark(
            atlas,
            spec,
            data,
            tuning,
            shifted,
            row_of,
            queries=profile.strategy_queries,
            advance=advance,
        )
    results["search"][str(dim)] = {
        "table": spec.table,
        "rows": profile.rows,
        "queries": profile.queries,
        "load_rows_per_s": load_rate,
        "lists": rebuilt.lists,
        "rebuild_s": rebuilt.seconds,
        "uses_index": index_used,
        "tune": {
            "probes": tuned.probes,
            "recall_on_its_sample": tuned.recall,
            "target": tuned.target,
            "tried": {str(p): r for p, r in tuned.tried.items()},
        },
        "sweep": rows,
        "breakdown": parts,
    }
    if dim == 1536 and "caches" not in skip:
        with steps.phase("similarity cache: miss vs hit", 1) as advance:
            results["caches"]["similarity"] = await caches.similarity_cache(
                atlas, spec, data.queries[: profile.similarity_queries], advance=advance
            )
    return data.queries[-profile.settings_queries :]


async def _settings_table(
    atlas: codeatlas.Atlas, spec: TableSpec, profile: Profile, seed: int, steps: Steps
) -> tuple[Any, dict[str, Any]]:
    """Load a table this run does not benchmark, for the settings comparison only.

    The same data and HNSW index as the full per-table run leaves behind (the strategies
    benchmark builds HNSW last and tunes it on 200 fresh draws of the mixture); return the
    held-out queries and what was built.
    """
    dim = spec.dimensions
    with steps.phase(f"{dim}d: data, load and HNSW for the settings comparison", 3) as advance:
        data = make_dataset(dim, profile.rows, profile.queries, seed=seed)
        advance()
        async with atlas.indexes.bulk_load(spec.table):
            await insert_rows(atlas, spec, data.base, chunk=_LOAD_CHUNK)
        advance()
        started = time.perf_counter()
        [built] = await atlas.indexes.rebuild(spec.table, kind="hnsw", concurrently=False)
        build_s = time.perf_counter() - started
        await atlas.executor.execute(f"ANALYZE {spec.table}")
        tuning, _ = other_queries(data, seed=seed, tune=profile.tune_queries, shifted=1)
        [tuned] = await atlas.indexes.tune(spec.table, target_recall=0.95, queries=tuning, seed=1)
        advance()
    return data.queries[-profile.settings_queries :], {
        "table": spec.table,
        "rows": profile.rows,
        "kind": built.strategy,
        "params": dict(built.params),
        "build_s": build_s,
        "knob": tuned.knob,
        "tuned": tuned.probes,
    }


async def _bulk_load(atlas: codeatlas.Atlas, spec: TableSpec, data: Dataset) -> dict[str, float]:
    """Reload the same rows through ``atlas.indexes.bulk_load``; return its timings."""
    await atlas.executor.execute(f"TRUNCATE {spec.table} RESTART IDENTITY CASCADE")
    started = time.perf_counter()
    async with atlas.indexes.bulk_load(spec.table) as load:
        await insert_rows(atlas, spec, data.base, chunk=_LOAD_CHUNK)
        loaded = time.perf_counter() - started
    total = time.perf_counter() - started
    return {"load_s": loaded, "build_s": load.results[0].seconds, "total_s": total}


async def _settings_effect(
    atlas: codeatlas.Atlas, sets: dict[int, Any], profile: Profile, steps: Steps
) -> dict[str, Any]:
    """Search p50 on the loaded tables with the sized settings, then PostgreSQL's defaults.

    *sets* holds held-out queries per dimension. Each table keeps the last strategy the
    strategies benchmark built (HNSW) with its tuned knob; an exact search is measured too.
    """
    assert atlas.server is not None

    async def measure(connected: codeatlas.Atlas) -> dict[str, Any]:
        figures: dict[str, Any] = {"settings": {}}
        for name in (*POSTGRES_DEFAULTS, "work_mem"):
            figures["settings"][name] = await connected.executor.fetchval(f"SHOW {name}")
        for dim, queries in sets.items():
            repository = TABLES[dim].repository(connected)
            kinds = {s.table: s.strategy for s in await connected.indexes.status()}
            figures.setdefault("index_kinds", {})[str(dim)] = kinds[TABLES[dim].table]
            for label, exact in (("index", False), ("exact", True)):
                for query in queries[:5]:  # warm
                    await repository.search_similar(query, 10, exact=exact)
                times = []
                for query in queries:
                    started = time.perf_counter()
                    await repository.search_similar(query, 10, exact=exact)
                    times.append(time.perf_counter() - started)
                figures[f"{dim}_{label}"] = summarise(times)
        return figures

    with steps.phase("server settings: sized vs PostgreSQL defaults", 2) as advance:
        sized = await measure(atlas)
        advance()
        for name, value in POSTGRES_DEFAULTS.items():
            await atlas.executor.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        dsn = atlas.server.dsn("codeatlas")
        atlas.server.restart()
        async with codeatlas.connect(dsn, migrate=False) as fresh:
            defaults = await measure(fresh)
            for name in POSTGRES_DEFAULTS:
                await fresh.executor.execute(f"ALTER SYSTEM RESET {name}")
        advance()
    return {
        "sized": sized,
        "defaults": defaults,
        "queries": profile.settings_queries,
        "rows": profile.rows,
    }


def _host() -> tuple[str, float | None]:
    """Return the CPU model and the memory in GB, as Linux reports them."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = None
    with contextlib.suppress(OSError, ValueError):
        total = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
        memory = round(int(total) / 1024 / 1024, 1)
    return cpu, memory


async def _machine(atlas: codeatlas.Atlas, embedded: bool) -> dict[str, Any]:
    cpu, memory = _host()
    settings = {}
    for name in (
        "shared_buffers",
        "work_mem",
        "max_connections",
        "jit",
        "fsync",
        "synchronous_commit",
        "max_parallel_workers_per_gather",
    ):
        settings[name] = await atlas.executor.fetchval(f"SHOW {name}")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgresql": await atlas.executor.fetchval("SHOW server_version"),
        "pgvector": await atlas.executor.fetchval(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ),
        "server": "embedded (throwaway data directory)" if embedded else "external (--dsn)",
        # other work on the machine inflates latencies; recorded so a reader can tell
        "load_average_start": list(os.getloadavg()),
        "server_settings": settings,
        "command_timeout_s": COMMAND_TIMEOUT,
        "packages": {
            name: metadata.version(name)
            for name in ("codeatlas", "asyncpg", "psycopg", "pgvector", "numpy")
        },
    }


@contextlib.asynccontextmanager
async def _connected(dsn: str | None, pool_size: int) -> AsyncIterator[tuple[codeatlas.Atlas, str]]:
    """Yield a migrated Atlas and its clear DSN (a throwaway embedded server by default)."""
    if dsn is not None:
        settings = Settings(
            pool_min_size=pool_size, pool_max_size=pool_size, command_timeout=COMMAND_TIMEOUT
        )
        async with codeatlas.connect(dsn, settings=settings) as atlas:
            yield atlas, dsn
        return
    with tempfile.TemporaryDirectory(prefix="codeatlas-bench-") as scratch:
        settings = Settings(
            data_dir=Path(scratch) / "pgdata",
            pool_min_size=1,
            pool_max_size=pool_size,
            command_timeout=COMMAND_TIMEOUT,
        )
        atlas = await codeatlas.connect(settings=settings)
        assert atlas.server is not None
        for name, value in EMBEDDED_SETTINGS.items():
            await atlas.executor.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        await atlas.close()
        atlas.server.restart()
        settings = settings.model_copy(update={"pool_min_size": pool_size})
        async with codeatlas.connect(settings=settings) as atlas:
            assert atlas.server is not None
            yield atlas, atlas.server.dsn("codeatlas")


_TABLES_CHECKED: Final = ("vector_search", "rag_documents", "semantic_cache")


async def _refuse_non_empty(atlas: codeatlas.Atlas) -> None:
    for table in _TABLES_CHECKED:
        if await atlas.executor.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
            raise SystemExit(
                f"{table} has rows: the benchmark truncates its tables; "
                "pass --truncate to allow that, or use a scratch database"
            )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run every benchmark of the chosen profile and return all figures."""
    profile = PROFILES["full" if args.full else "small"]
    # rebuilt from the options, so that a DSN (and its password) never lands in the report
    command = ["python -m benchmarks", f"--{profile.name}"]
    if args.rows is not None:
        # a reduced (or larger) scale of the profile: rows per table and cache entries
        profile = replace(
            profile,
            name=f"{profile.name}, {args.rows:,} rows",
            rows=args.rows,
            cache_entries_large=args.rows,
        )
        command.append(f"--rows {args.rows}")
    if args.dsn is not None:
        command.append("--dsn <DSN>" + (" --truncate" if args.truncate else ""))
    if args.seed != DEFAULT_SEED:
        command.append(f"--seed {args.seed}")
    dims = sorted(set(args.dims or TABLES))
    if dims != sorted(TABLES):
        command.append("--dims " + " ".join(map(str, dims)))
    skip = frozenset(args.skip or ())
    if skip:
        command.append("--skip " + " ".join(sorted(skip)))
    results: dict[str, Any] = {
        "command": " ".join(command),
        "profile": asdict(profile),
        "seed": args.seed,
        "ingest": {},
        "search": {},
        "strategies": {},
        "caches": {},
        "skipped": sorted(skip),
        "commit": provenance.commit(),
    }
    started = time.perf_counter()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        steps = Steps(progress)
        with steps.phase("start server and migrate", 1) as advance:
            connected = _connected(args.dsn, max(CONCURRENCIES))
            atlas, dsn = await connected.__aenter__()
            advance()
        try:
            if args.dsn is not None and not args.truncate:
                await _refuse_non_empty(atlas)
            results["machine"] = await _machine(atlas, embedded=args.dsn is None)
            held_out = {}
            for dim in dims:
                held_out[dim] = await _dataset(
                    atlas, dsn, TABLES[dim], profile, args.seed, steps, results, skip
                )
                _save_partial(results, args.out)
            if "caches" not in skip:
                results["caches"]["semantic"] = {}
            for entries in (
                () if "caches" in skip else (profile.cache_entries, profile.cache_entries_large)
            ):
                with steps.phase(f"semantic cache, {entries:,} entries", 3) as advance:
                    cache_data = make_dataset(
                        768, entries, profile.cache_lookups, seed=args.seed + 1, k=1
                    )
                    results["caches"]["semantic"][str(entries)] = await caches.semantic_cache(
                        atlas,
                        dsn,
                        cache_data.base,
                        cache_data.queries,
                        lookups=profile.cache_lookups,
                        seed=args.seed,
                        advance=advance,
                    )
            _save_partial(results, args.out)
            if args.dsn is None and "settings" not in skip:
                # every table in the comparison: the ones this run skipped loaded for it alone
                loaded_for_it = {}
                for dim in sorted(set(TABLES) - set(dims)):
                    held_out[dim], loaded_for_it[str(dim)] = await _settings_table(
                        atlas, TABLES[dim], profile, args.seed, steps
                    )
                results["server_settings"] = await _settings_effect(atlas, held_out, profile, steps)
                results["server_settings"]["loaded_for_it"] = loaded_for_it
        finally:
            await connected.__aexit__(None, None, None)
    results["duration_s"] = time.perf_counter() - started
    results["machine"]["load_average_per_phase"] = steps.loads
    results["machine"]["load_average_end"] = list(os.getloadavg())
    return results


def _save_partial(results: dict[str, Any], out: Path) -> None:
    """Write the figures so far (a long run that fails later keeps them)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks.partial.json").write_text(json.dumps(results, indent=1) + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="codeatlas search, ingest and cache benchmarks (writes docs/benchmarks.*)",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--small", action="store_true", help="10k rows per dimension (default)")
    size.add_argument("--full", action="store_true", help="100k rows per dimension")
    parser.add_argument(
        "--dsn", help="use this database instead of a throwaway embedded server (it is migrated)"
    )
    parser.add_argument(
        "--truncate",
        action="store_true",
        help="with --dsn: allow emptying vector_search, rag_documents and semantic_cache",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="data seed")
    parser.add_argument(
        "--rows", type=int, help="rows per table (and cache entries) instead of the profile's"
    )
    parser.add_argument(
        "--dims",
        type=int,
        nargs="+",
        choices=sorted(TABLES),
        help="run only these tables' dimensions (default: all)",
    )
    parser.add_argument(
        "--skip", nargs="+", choices=SKIPPABLE, help="leave these phases out of the run"
    )
    parser.add_argument(
        "--merge",
        type=Path,
        metavar="JSON",
        help="merge the results over an earlier benchmarks.json: the figures this run (or "
        "--render) has replace that file's, the rest are kept with the run they came from",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("docs"), help="where benchmarks.md/.json and img/ go"
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only re-render the Markdown and plots from an earlier benchmarks.json",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run the benchmarks (or re-render a report) from the command line."""
    args = _parser().parse_args(argv)
    if args.render is not None:
        results = json.loads(args.render.read_text())
    else:
        results = asyncio.run(run(args))
        args.out.mkdir(parents=True, exist_ok=True)
        if args.merge is not None:
            # the run's own figures, unmerged, next to the merged file
            (args.out / "benchmarks.run.json").write_text(json.dumps(results, indent=1) + "\n")
        (args.out / "benchmarks.partial.json").unlink(missing_ok=True)
    if args.merge is not None:
        results = provenance.merge(results, json.loads(args.merge.read_text()))
    if args.merge is not None or args.render is None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "benchmarks.json").write_text(json.dumps(results, indent=1) + "\n")
    written = report.render(results, args.out)
    report.print_summary(results, console)
    for path in written:
        console.log(f"wrote {path}")
