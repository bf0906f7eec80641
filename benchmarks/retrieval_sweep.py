"""The dev-set sweep behind the hybrid knobs of ``codeatlas.indexer.query``.

    python -m benchmarks.retrieval_sweep [--embedders hashing local] [--workers 2]

For each embedder the stdlib is indexed as ``benchmarks.retrieval`` does it, then each DEV
question (never a held-out one: they are not even asked) is asked once per table with deep
candidate lists, keeping every row's vector rank and lexical rank (``search_hybrid``
returns both): codebase_metadata (files), code_embeddings (chunks) and code_locations
(symbols). The ranking variants are replayed from those component ranks, so one index
serves the whole sweep; each prints dev file MRR@10 / recall@5 and function MRR@10 /
recall@5. A variant replays a fusion exactly when its candidate counts are within the
collected depth (``search_hybrid`` ranks each half independently of the other).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, TypeVar

import codeatlas
from codeatlas.cli.demo import STDLIB_TEST_DIRS
from codeatlas.config import Settings
from codeatlas.embedders import embedder
from codeatlas.indexer import DEFAULT_EXCLUDE_DIRS, Indexer, stdlib_path

from .retrieval import CODEBASE, EMBEDDERS, RECALL_AT, Question, load_questions, warm

RRF_K: Final = 60
DEPTH: Final = 300  # candidates a half collected per table
FUNCTION_KINDS: Final = ("function", "method")

# (path, vector rank, text rank)
Ranked = list[tuple[str, int | None, int | None]]
# chunks: (path, vector rank, text rank, kind, qualified name or None, first line, last line)
ChunkRanked = list[tuple[str, int | None, int | None, str, str | None, int, int]]


@dataclass(frozen=True, slots=True)
class Collected:
    files: Ranked
    chunks: ChunkRanked
    symbols: list[tuple[str, str, str, int | None, int | None]]  # path, name, kind, v, t
    functions: list[tuple[str, str, str, int | None, int | None]]  # functions and methods
    lines: dict[tuple[str, str], int]  # the functions': (path, name) -> first line


@dataclass(frozen=True, slots=True)
class Variant:
    """One ranking: the file fusion's knobs and the function fusion's."""

    flat: bool = True  # four component rankings in one RRF, else file hybrid + chunk hybrid
    file_candidates: int = 80
    file_rows: int = 20  # flat only: the files' fused top rows read (0: all of them)
    chunk_candidates: int = 100
    chunk_weight: float = 0.5
    chunks_summed: int = 1  # nested only: a file's best n chunks add up
    symbol_weight: float = 0.0  # nested only: the file's best symbol, rolled up
    module_bonus: float = 0.0  # a file whose module name is a word of the question
    function_candidates: int = 50
    file_prior: float = 10.0
    only_top_files: int = 0  # >0: functions only from the top n files (another statement)
    function_chunk_weight: float = 0.0  # the function's own chunk (its body), both its ranks
    class_chunks: bool = False  # a method of a class kept whole: the class's chunk is its own


def _fused(items: Iterable[tuple[Any, int | None, int | None]], candidates: int) -> list[Any]:
    """Return the keys of *items* in search_hybrid's order for *candidates* a half."""
    scored = []
    for key, vector, text in items:
        value = 0.0
        if vector is not None and vector <= candidates:
            value += 1.0 / (RRF_K + vector)
        if text is not None and text <= candidates:
            value += 1.0 / (RRF_K + text)
        if value:
            scored.append((-value, min(vector or 10**9, text or 10**9), key))
    return [key for *_, key in sorted(scored, key=lambda s: s[:2])]


KeyT = TypeVar("KeyT", str, tuple[str, str])


def _by_best(pairs: Iterable[tuple[KeyT, int | None]], candidates: int) -> dict[KeyT, int]:
    """Return each key's rank by its best component rank within *candidates*."""
    best: dict[KeyT, int] = {}
    for path, rank in pairs:
        if rank is not None and rank <= candidates and rank < best.get(path, rank + 1):
            best[path] = rank
    return {p: i for i, p in enumerate(sorted(best, key=best.__getitem__), 1)}


def _module_names(path: str) -> set[str]:
    parts = path.removesuffix(".py").split("/")
    return {parts[-2]} if parts[-1] == "__init__" and len(parts) > 1 else {parts[-1]}


def rank_files(c: Collected, v: Variant, query: str, paths: Sequence[str]) -> list[str]:
    scores: dict[str, float] = {}

    def add(ranks: dict[str, int], weight: float) -> None:
        for path, rank in ranks.items():
            scores[path] = scores.get(path, 0.0) + weight / (RRF_K + rank)

    if v.flat:
        own = c.files
        if v.file_rows:
            kept = set(_fused(((p, vr, tr) for p, vr, tr in own), v.file_candidates)[: v.file_rows])
            own = [f for f in own if f[0] in kept]
        add(_by_best(((p, r) for p, r, _ in own), v.file_candidates), 1.0)
        add(_by_best(((p, r) for p, _, r in own), v.file_candidates), 1.0)
        add(_by_best(((p, r) for p, r, *_ in c.chunks), v.chunk_candidates), v.chunk_weight)
        add(_by_best(((p, r) for p, _, r, *_ in c.chunks), v.chunk_candidates), v.chunk_weight)
    else:
        own = _fused(((p, vr, tr) for p, vr, tr in c.files), v.file_candidates)
        add({p: i for i, p in enumerate(own[: v.file_candidates // 2], 1)}, 1.0)
        chunk_order = _fused(
            ((i, vr, tr) for i, (_, vr, tr, *_) in enumerate(c.chunks)), v.chunk_candidates
        )
        per_file: dict[str, list[int]] = {}
        for rank, i in enumerate(chunk_order[: v.chunk_candidates // 2], 1):
            per_file.setdefault(c.chunks[i][0], []).append(rank)
        for path, ranks in per_file.items():
            scores[path] = scores.get(path, 0.0) + v.chunk_weight * sum(
                1.0 / (RRF_K + r) for r in ranks[: v.chunks_summed]
            )
        if v.symbol_weight:
            order = _fused(((i, s[3], s[4]) for i, s in enumerate(c.symbols)), 100)
            best: dict[str, int] = {}
            for rank, i in enumerate(order[:50], 1):
                best.setdefault(c.symbols[i][0], rank)
            add(best, v.symbol_weight)
    if v.module_bonus:
        words = {w.lower() for w in "".join(ch if ch.isalnum() else " " for ch in query).split()}
        ranked = sorted(scores, key=lambda p: (-scores[p], p))
        scores = {p: 1.0 / (RRF_K + i) for i, p in enumerate(ranked, 1)}
        for path in paths:
            if _module_names(path) & words:
                scores[path] = scores.get(path, 0.0) + v.module_bonus / (RRF_K + 1)
    return sorted(scores, key=lambda p: (-scores[p], p))


def rank_functions(c: Collected, v: Variant, files: Sequence[str]) -> list[tuple[str, str]]:
    top = {p: i for i, p in enumerate(files[:10], 1)}
    functions = c.functions
    if v.only_top_files:
        inside = {p for p in files[: v.only_top_files]}
        functions = [s for s in functions if s[0] in inside]
        # ranks within the subset, as a search restricted to those files would give them
        vector = _by_rank_within(functions, 3)
        text = _by_rank_within(functions, 4)
        items = [
            ((s[0], s[1]), vector.get((s[0], s[1])), text.get((s[0], s[1]))) for s in functions
        ]
    else:
        items = [((s[0], s[1]), s[3], s[4]) for s in functions]
    order = _fused(items, v.function_candidates)
    scores: dict[tuple[str, str], float] = {}
    for rank, key in enumerate(order, 1):
        scores[key] = 1.0 / (RRF_K + rank)
    if v.function_chunk_weight:
        bodies = [
            ((p, name), vr, tr)
            for p, vr, tr, kind, name, _, _ in c.chunks
            if kind in FUNCTION_KINDS and name is not None
        ]
        if v.class_chunks:
            classes: dict[str, list[tuple[int, int, int | None, int | None]]] = {}
            for p, vr, tr, kind, _, first, last in c.chunks:
                if kind == "class":
                    classes.setdefault(p, []).append((first, last, vr, tr))
            for p, name in order:  # the functions of the own ranking, as search has them
                line = c.lines[p, name]
                for first, last, vr, tr in classes.get(p, ()):
                    if first <= line <= last:
                        bodies.append(((p, name), vr, tr))
        for ranks in (
            _by_best(((key, vr) for key, vr, _ in bodies), v.chunk_candidates),
            _by_best(((key, tr) for key, _, tr in bodies), v.chunk_candidates),
        ):
            for key, rank in ranks.items():
                scores[key] = scores.get(key, 0.0) + v.function_chunk_weight / (RRF_K + rank)
    for key in scores:
        if key[0] in top:
            scores[key] += v.file_prior / (RRF_K + top[key[0]])
    return sorted(scores, key=lambda key: (-scores[key], key))


def _by_rank_within(
    symbols: Sequence[tuple[str, str, str, int | None, int | None]], column: int
) -> dict[tuple[str, str], int]:
    have = sorted((s for s in symbols if s[column] is not None), key=lambda s: s[column] or 0)
    return {(s[0], s[1]): i for i, s in enumerate(have, 1)}


def measure(
    questions: Sequence[Question], data: Sequence[Collected], paths: Sequence[str], v: Variant
) -> tuple[float, float, float, float]:
    """Return dev file MRR@10, file recall@5, function MRR@10, function recall@5."""
    file_rr, file_recall, fn_rr, fn_recall = [], [], [], []
    for q, c in zip(questions, data, strict=True):
        files = rank_files(c, v, q.query, paths)[:10]
        file_rr.append(next((1 / i for i, f in enumerate(files, 1) if f in q.files), 0.0))
        file_recall.append(len(set(files[:RECALL_AT]) & q.files) / len(q.files))
        if q.functions:
            functions = rank_functions(c, v, files)[:10]
            fn_rr.append(next((1 / i for i, f in enumerate(functions, 1) if f in q.functions), 0.0))
            names = {n for _, n in q.functions}
            hit = {n for p, n in functions[:RECALL_AT] if (p, n) in q.functions}
            fn_recall.append(len(hit) / len(names))
    return (
        statistics.fmean(file_rr),
        statistics.fmean(file_recall),
        statistics.fmean(fn_rr),
        statistics.fmean(fn_recall),
    )


NESTED: Final = Variant(flat=False, file_candidates=40, file_prior=0.0, function_candidates=20)
SWEEP: Final[list[tuple[str, Callable[[], Variant]]]] = [
    ("before: nested, 40 a half, no file prior", lambda: NESTED),
    *[
        (f"nested, files {n} a half", lambda n=n: replace(NESTED, file_candidates=n))
        for n in (20, 80)
    ],
    *[
        (f"nested, chunk weight {w}", lambda w=w: replace(NESTED, chunk_weight=w))
        for w in (0.0, 1.0)
    ],
    *[
        (f"nested, best {n} chunks summed", lambda n=n: replace(NESTED, chunks_summed=n))
        for n in (2, 3, 5)
    ],
    *[
        (f"nested, best symbol at {w}", lambda w=w: replace(NESTED, symbol_weight=w))
        for w in (0.1, 0.5, 1.0)
    ],
    ("nested, module-name bonus 0.5", lambda: replace(NESTED, module_bonus=0.5)),
    ("flat, 80 a half, 20 rows (chosen, file prior 10)", Variant),
    ("flat, every file row either half ranked", lambda: Variant(file_rows=0)),
    *[(f"flat, chunk weight {w}", lambda w=w: Variant(chunk_weight=w)) for w in (0.25, 1.0)],
    *[(f"flat, file prior {w}", lambda w=w: Variant(file_prior=w)) for w in (0, 1, 2, 5, 100)],
    *[
        (f"flat, functions only in top {n} files", lambda n=n: Variant(only_top_files=n))
        for n in (3, 5, 10)
    ],
    *[
        (f"flat, function's own chunk at {w}", lambda w=w: Variant(function_chunk_weight=w))
        for w in (0.25, 0.5, 1.0, 2.0)
    ],
    *[
        (
            f"flat, own chunk at {w}, a class's kept whole its methods'",
            lambda w=w: Variant(function_chunk_weight=w, class_chunks=True),
        )
        for w in (0.25, 0.5, 1.0)
    ],
    *[
        (
            f"flat, function's own chunk at {w}, file prior {p}",
            lambda w=w, p=p: Variant(function_chunk_weight=w, file_prior=p),
        )
        for w in (0.5, 1.0)
        for p in (5, 20)
    ],
]


def _symbol(m: Any) -> tuple[str, str, str, int | None, int | None]:
    name = str((m.item.metadata or {}).get("qualname") or m.item.symbol_name)
    return (m.item.file_path, name, m.item.symbol_type, m.vector_rank, m.text_rank)


def _named(matches: Iterable[Any]) -> Iterable[tuple[Any, Any]]:
    return ((_symbol(m), m) for m in matches)


async def collect(name: str, questions: Sequence[Question], workers: int) -> tuple[Any, Any]:
    root = stdlib_path()
    exclude = (*DEFAULT_EXCLUDE_DIRS, *STDLIB_TEST_DIRS)
    data: list[Collected] = []
    with tempfile.TemporaryDirectory(prefix=f"codeatlas-sweep-{name}-") as scratch:
        settings = Settings(data_dir=Path(scratch) / "pgdata", pool_min_size=1, pool_max_size=4)
        async with codeatlas.connect(settings=settings) as atlas:
            small, large = embedder(name, 768), embedder(name, 1536)
            indexer = Indexer(
                atlas, embedder=small, file_embedder=large, workers=workers, exclude_dirs=exclude
            )
            await indexer.index(root, codebase_id=CODEBASE)
            rows = await atlas.executor.fetch(
                "SELECT id, file_path FROM code_files WHERE project_name = $1", CODEBASE
            )
            ids = {r["id"]: r["file_path"] for r in rows}
            for q in questions:
                sv, lv = (await small.embed([q.query]))[0], (await large.embed([q.query]))[0]
                files = await atlas.codebases.search_hybrid(
                    q.query, lv, 2 * DEPTH, where={"codebase_id": CODEBASE}, candidates=DEPTH
                )
                chunks = await atlas.code.embeddings.search_hybrid(
                    q.query, sv, 2 * DEPTH, where={"code_file_id": list(ids)}, candidates=DEPTH
                )
                symbols = await atlas.code.locations.search_hybrid(
                    q.query, sv, 2 * DEPTH, where={"project": CODEBASE}, candidates=DEPTH
                )
                functions = await atlas.code.locations.search_hybrid(
                    q.query,
                    sv,
                    2 * DEPTH,
                    where={"project": CODEBASE, "symbol_type": list(FUNCTION_KINDS)},
                    candidates=DEPTH,
                )
                data.append(
                    Collected(
                        [(m.item.path, m.vector_rank, m.text_rank) for m in files],
                        [
                            (
                                ids[m.item.code_file_id],
                                m.vector_rank,
                                m.text_rank,
                                str((m.item.metadata or {}).get("kind")),
                                (m.item.metadata or {}).get("name"),
                                int((m.item.metadata or {}).get("start_line") or 0),
                                int((m.item.metadata or {}).get("end_line") or 0),
                            )
                            for m in chunks
                            if m.item.code_file_id in ids
                        ],
                        [_symbol(m) for m in symbols],
                        [_symbol(m) for m in functions],
                        {(s[0], s[1]): m.item.line_start for s, m in _named(functions)},
                    )
                )
    return data, sorted(set(ids.values()))


async def main_async(args: argparse.Namespace) -> None:
    dev = [q for q in load_questions() if q.split == "dev"]  # held-out questions: never
    await asyncio.to_thread(warm, stdlib_path(), (*DEFAULT_EXCLUDE_DIRS, *STDLIB_TEST_DIRS))
    for name in args.embedders:
        data, paths = await collect(name, dev, args.workers)
        print(f"{name}: {len(dev)} dev questions")
        print(f"  {'variant':48s} file MRR@10  R@5   function MRR@10  R@5")
        for label, make in SWEEP:
            f_mrr, f_r5, n_mrr, n_r5 = measure(dev, data, paths, make())
            print(f"  {label:48s} {f_mrr:.3f}  {f_r5:.3f}   {n_mrr:.3f}  {n_r5:.3f}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retrieval_sweep")
    parser.add_argument("--embedders", nargs="+", default=list(EMBEDDERS), choices=EMBEDDERS)
    parser.add_argument("--workers", type=int, default=2)
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
