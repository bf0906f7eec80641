"""Questions answered from an indexed codebase: files and functions, without re-indexing.

``await search(atlas, query, codebase_id)`` ranks the codebase's files (codebase_metadata:
the 1536-d summary vector and the file's names, paths and docstrings) and its functions and
methods (code_locations: the 768-d symbol vector and name, signature, documentation) for a
question. ``mode`` picks the ranking: ``hybrid`` (default: ``search_hybrid``, RRF of the
vector and lexical rankings; files also by the ranks of their best chunk, RRF again;
functions also by the ranks of their own chunk, their code, and by the rank of their file
among the files found, the file weighing most),
``vector`` (``search_similar``) or ``text`` (``search_text``). The query is embedded with the
embedder the index was built with (recorded in its rows), so the vectors compare.
``codeatlas search`` and ``codeatlas demo`` both answer through this module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from ..atlas import Atlas
from ..embedders import Embedder, embedder
from ..errors import InvalidInputError, NotFoundError
from ..models import AnalysisStatus
from ..repositories._base import check_count
from ..search import MAX_K as _SEARCH_MAX_K

__all__ = [
    "MAX_K",
    "MODES",
    "FileHit",
    "FunctionHit",
    "SearchResult",
    "embedder_name_of",
    "latest_codebase",
    "search",
]

Mode = Literal["hybrid", "vector", "text"]
#: The rankings ``search`` offers.
MODES: Final = ("hybrid", "vector", "text")
_FUNCTION_KINDS: Final = ["function", "method"]
# The hybrid knobs below were chosen on the 35 dev questions of
# benchmarks/retrieval_queries.json (never per question, never on the held-out ones) with
# ``python -m benchmarks.retrieval_sweep``; dev MRR@10 figures quoted as hashing / local.
#: RRF constant of the fusions made here (as search_hybrid's default)
_RRF_K: Final = 60
#: files: candidates a half of the files' search_hybrid, per k (in the earlier nested
#: fusion 20 / 40 / 80 a half gave file MRR@10 0.819 / 0.852 / 0.862 hashing, 0.952 local)
_FILE_DEPTH: Final = 8
#: files: rows of the files' search_hybrid read, per k: its best by the fused rank, each with
#: both component ranks (codebase_metadata rows are wide: p50 181 ms for all 160 rows either
#: half ranked, 76 ms for the top 40, against 43 ms for the old 20 of 40 candidates a half,
#: one ad hoc run on a loaded machine; 20 rows and 160 gave the same dev figures)
_FILE_ROWS: Final = 2
#: files: candidates a half of the chunks' search_hybrid, per k
_CHUNK_DEPTH: Final = 10
#: files: the weight of the two rankings of a file's best chunk next to the two of its own
#: (file MRR@10 with 0.25 / 0.5 / 1.0: 0.924 / 0.905 / 0.881 hashing, 0.938 / 0.957 /
#: 0.957 local). The four component rankings fused flat gave 0.905 / 0.957 where the
#: earlier nested fusion (the file's hybrid rank with its best chunk's) gave 0.852 / 0.952;
#: summing a file's best 3 or 5 chunks instead of the best one lost (0.810 / 0.764 hashing:
#: long files win), so did rolling each file's best symbol into its score and a bonus for a
#: module named by a word of the question (0.771: copy, string, code are module names)
_CHUNK_WEIGHT: Final = 0.5
#: functions: candidates a half of their search_hybrid, per k
_FUNCTION_DEPTH: Final = 5
#: the largest k of ``search``
MAX_K: Final = 100
# candidates a half at most: search_hybrid returns up to twice that, within its own MAX_K
_HALF: Final = _SEARCH_MAX_K // 2
#: functions: the weight of the function's file rank (among the k files found) next to its
#: own hybrid rank; a heavy weight makes the ranking hierarchical, the functions of the
#: best file first, ordered by their own rank (function MRR@10 with weights 0 / 1 / 2 / 5 /
#: 10 / 100: 0.383 / 0.519 / 0.552 / 0.586 / 0.593 / 0.607 hashing, 0.381 / 0.486 / 0.550 /
#: 0.620 / 0.630 / 0.645 local)
_FILE_PRIOR: Final = 10.0
#: functions: the weight of the vector and lexical ranks of the chunk holding a function's
#: code next to its own hybrid rank (function MRR@10 with 0 / 0.25 / 0.5 / 1.0: 0.593 /
#: 0.642 / 0.678 / 0.624 hashing, 0.626 / 0.709 / 0.654 / 0.624 local; with only functions'
#: and methods' own chunks, none for the methods of a class kept whole, 0.648 / 0.684 /
#: 0.624 and 0.741 / 0.693 / 0.666, but a method then loses to any function of another file
#: that has a chunk of its own: chosen for every function alike)
_BODY_WEIGHT: Final = 0.5
KeyT = TypeVar("KeyT", str, tuple[str, str])
# the chunk search filters on code_file_id: the codebase's file ids, and their paths
_FILE_IDS: Final = """
SELECT id, file_path
  FROM code_files
 WHERE project_name = $1"""
# where functions found by their code alone start (by path and qualified name; the indexer
# writes ``/``-separated paths and records the name in metadata)
_FIRST_LINES: Final = """
SELECT k.path, k.name, min(l.line_start) AS line
  FROM unnest($2::text[], $3::text[]) AS k (path, name)
  JOIN code_locations AS l
    ON l.file_path = k.path
   AND coalesce(l.metadata ->> 'qualname', l.symbol_name) = k.name
 WHERE l.project = $1
 GROUP BY k.path, k.name"""
# the recorded embedder's name -> the name ``embedder()`` builds it by
_KNOWN: Final = {"hashing": "hashing", "wordllama-l2_supercat-256": "local"}


@dataclass(frozen=True, slots=True)
class FileHit:
    """A file (path relative to the indexed root, ``/``-separated) and its score."""

    path: str
    score: float


@dataclass(frozen=True, slots=True)
class FunctionHit:
    """A function or method: its file, qualified name, first line and score."""

    path: str
    name: str
    line: int
    score: float


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The files and functions that answer *query* in *codebase_id*, best first.

    Scores are what the mode ranks by: the fused RRF score (hybrid), cosine similarity
    (vector) or ``ts_rank_cd`` (text).
    """

    query: str
    codebase_id: str
    mode: str
    embedder: str
    files: tuple[FileHit, ...]
    functions: tuple[FunctionHit, ...]
    files_ms: float
    functions_ms: float

    def as_json(self) -> dict[str, Any]:
        """Return the result in the shape ``codeatlas search --json`` prints."""
        return {
            "query": self.query,
            "codebase_id": self.codebase_id,
            "files": [{"path": f.path, "score": f.score} for f in self.files],
            "functions": [
                {"path": f.path, "name": f.name, "line": f.line, "score": f.score}
                for f in self.functions
            ],
        }


async def latest_codebase(atlas: Atlas, path: Path | str | None = None) -> str:
    """Return the most recently indexed codebase (of the directory *path*, when given)."""
    where: dict[str, Any] = {"analysis_status": AnalysisStatus.COMPLETED.value}
    if path is not None:
        where["codebase_path"] = str(await asyncio.to_thread(Path(path).resolve))
    page = await atlas.codebases.registry.list(
        where, order_by="last_analyzed", descending=True, limit=1
    )
    if not page.items:
        place = f" for {path}" if path is not None else ""
        raise NotFoundError(f"no indexed codebase{place}: run codeatlas index-tree first")
    return page.items[0].codebase_id


async def embedder_name_of(atlas: Atlas, codebase_id: str) -> str:
    """Return the name ("hashing", "local") of the embedder *codebase_id* was indexed with."""
    page = await atlas.code.list({"project_name": codebase_id}, limit=1)
    if not page.items:
        raise NotFoundError(f"codebase {codebase_id!r} has no indexed files")
    stamp = (page.items[0].metadata or {}).get("embedder")
    if stamp is None:  # indexed before rows recorded their embedder: always hashing then
        return "hashing"
    name = stamp.get("name") if isinstance(stamp, dict) else None
    if name not in _KNOWN:
        raise InvalidInputError(
            f"codebase {codebase_id!r} was indexed with {name!r}; search it from Python "
            "with that embedder (search(..., embedders=(small, large)))"
        )
    return _KNOWN[name]


def _ranks_by_best(pairs: Iterable[tuple[KeyT | None, int | None]]) -> dict[KeyT, int]:
    """Return each key's rank (1 = best: a path, or a function's path and name) by the best
    of the component ranks it holds."""
    best: dict[KeyT, int] = {}
    for path, rank in pairs:
        if path is not None and rank is not None and rank < best.get(path, rank + 1):
            best[path] = rank
    return {path: i for i, path in enumerate(sorted(best, key=lambda p: (best[p], p)), 1)}


async def _hybrid_files(
    atlas: Atlas,
    query: str,
    codebase_id: str,
    k: int,
    small_vec: Any,
    large_vec: Any,
) -> tuple[list[FileHit], list[tuple[str, Any]]]:
    """Rank files by RRF of four rankings: the file's own vector and lexical ranks, and the
    vector and lexical ranks of its best chunk; also return the chunks found that hold
    functions' code (``_is_body``), with their file's path, for ``_hybrid_functions``.

    A file's summary and tsvector hold its path, names and docstrings; its chunks hold the
    module docstring and the code, which answer many questions the names do not.
    ``search_hybrid`` returns each row's rank in both of its halves.
    """
    file_candidates = min(_HALF, max(_FILE_DEPTH * k, 80))
    files = await atlas.codebases.search_hybrid(
        query,
        large_vec,
        max(_FILE_ROWS * k, 20),
        where={"codebase_id": codebase_id},
        candidates=file_candidates,
    )
    paths = {r["id"]: r["file_path"] for r in await atlas.executor.fetch(_FILE_IDS, codebase_id)}
    chunk_candidates = min(_HALF, max(_CHUNK_DEPTH * k, 100))
    chunks = (
        await atlas.code.embeddings.search_hybrid(
            query,
            small_vec,
            2 * chunk_candidates,
            where={"code_file_id": list(paths)},
            candidates=chunk_candidates,
        )
        if paths
        else []
    )
    of_chunk = [
        (paths.get(c.item.code_file_id) if c.item.code_file_id else None, c) for c in chunks
    ]
    rankings = (
        (1.0, _ranks_by_best((m.item.path, m.vector_rank) for m in files)),
        (1.0, _ranks_by_best((m.item.path, m.text_rank) for m in files)),
        (_CHUNK_WEIGHT, _ranks_by_best((path, c.vector_rank) for path, c in of_chunk)),
        (_CHUNK_WEIGHT, _ranks_by_best((path, c.text_rank) for path, c in of_chunk)),
    )
    scores: dict[str, float] = {}
    for weight, ranks in rankings:
        for path, rank in ranks.items():
            scores[path] = scores.get(path, 0.0) + weight / (_RRF_K + rank)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
    bodies = [
        (path.replace("\\", "/"), c) for path, c in of_chunk if path is not None and _is_body(c)
    ]
    return [FileHit(path.replace("\\", "/"), value) for path, value in ranked], bodies


def _is_body(chunk: Any) -> bool:
    """True when code_embeddings match *chunk* holds functions' code: a function's or a
    method's own chunk, or a class's (a class kept whole holds its methods)."""
    metadata = chunk.item.metadata or {}
    kind = metadata.get("kind")
    lines = all(isinstance(metadata.get(end), int) for end in ("start_line", "end_line"))
    if kind in _FUNCTION_KINDS:
        return lines and isinstance(metadata.get("name"), str)
    return lines and kind == "class"


async def _hybrid_functions(
    atlas: Atlas,
    query: str,
    where: dict[str, Any],
    k: int,
    small_vec: Any,
    files: list[FileHit],
    bodies: list[tuple[str, Any]],
) -> list[FunctionHit]:
    """Rank functions by RRF of their own hybrid rank, the vector and lexical ranks of
    the chunk among *bodies* that holds their code, and their file's rank in *files*.

    A function's code_locations row holds its name, signature and docstring; its chunk
    holds its code, whose words answer questions the name does not: a top-level function's
    own chunk, a method's own in a class long enough to be cut per method, else its class's
    (which holds all of its methods: so they are not left behind the functions that have a
    chunk of their own). A question names what a file is about more often than the function
    that does it; the files found are the stronger evidence, so a function of the best file
    comes first unless its own ranks are far below another's.
    """
    candidates = min(_HALF, max(_FUNCTION_DEPTH * k, 50))
    found = await atlas.code.locations.search_hybrid(
        query, small_vec, 2 * candidates, where=where, candidates=candidates
    )
    scores: dict[tuple[str, str], float] = {}
    lines: dict[tuple[str, str], int] = {}
    for rank, match in enumerate(found, 1):
        item = match.item
        key = (item.file_path.replace("\\", "/"), _qualname(item))
        if key not in scores:
            scores[key] = 1.0 / (_RRF_K + rank)
            lines[key] = int(item.line_start)
    # a function's code: its own chunk, or the chunk of the class kept whole it is in
    held: list[tuple[tuple[str, str], Any]] = []
    classes: dict[str, list[Any]] = {}
    for path, chunk in bodies:
        metadata = chunk.item.metadata
        if metadata["kind"] == "class":
            classes.setdefault(path, []).append(chunk)
        else:
            held.append(((path, metadata["name"]), chunk))
    for key in list(scores):
        for chunk in classes.get(key[0], ()):
            if chunk.item.metadata["start_line"] <= lines[key] <= chunk.item.metadata["end_line"]:
                held.append((key, chunk))
    for ranks in (
        _ranks_by_best((key, chunk.vector_rank) for key, chunk in held),
        _ranks_by_best((key, chunk.text_rank) for key, chunk in held),
    ):
        for key, rank in ranks.items():
            scores[key] = scores.get(key, 0.0) + _BODY_WEIGHT / (_RRF_K + rank)
    file_rank = {hit.path: rank for rank, hit in enumerate(files, 1)}
    for key in scores:
        of_file = file_rank.get(key[0])
        if of_file is not None:
            scores[key] += _FILE_PRIOR / (_RRF_K + of_file)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
    unknown = [key for key, _ in ranked if key not in lines]
    if unknown:
        # found by their code alone: a chunk's first line is the function's only when it is
        # not a later piece of a long one, so the symbol's row says where it starts
        for row in await atlas.executor.fetch(
            _FIRST_LINES, where["project"], [p for p, _ in unknown], [n for _, n in unknown]
        ):
            lines[row["path"], row["name"]] = int(row["line"])
        for key, chunk in held:
            lines.setdefault(key, int(chunk.item.metadata["start_line"]))
    return [FunctionHit(path, name, lines[path, name], value) for (path, name), value in ranked]


def _qualname(location: Any) -> str:
    """Return a code_locations row's qualified name (the indexer records it in metadata)."""
    return str((location.metadata or {}).get("qualname") or location.symbol_name)


async def search(
    atlas: Atlas,
    query: str,
    codebase_id: str,
    *,
    k: int = 10,
    mode: Mode = "hybrid",
    embedder_name: str | None = None,
    embedders: tuple[Embedder, Embedder] | None = None,
) -> SearchResult:
    """Return the *k* files and *k* functions of *codebase_id* that best answer *query*.

    The query is embedded by *embedders* (768-d for functions, 1536-d for files) if given,
    else by the offline embedder *embedder_name*, else by the one recorded in the index.
    """
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {MODES}, got {mode!r}")
    check_count(k, field="k", low=1, high=MAX_K)
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError("query must be a non-empty str")
    name = "custom"
    small_vec = large_vec = None
    if mode != "text":
        if embedders is None:
            name = embedder_name or await embedder_name_of(atlas, codebase_id)
            embedders = (embedder(name, 768), embedder(name, 1536))
        small, large = embedders
        small_vec = (await small.embed([query]))[0]
        large_vec = (await large.embed([query]))[0]
    elif embedder_name is not None:
        name = embedder_name
    else:
        name = "none"

    file_where = {"codebase_id": codebase_id}
    started = time.perf_counter()
    file_hits: list[FileHit] | None = None
    bodies: list[tuple[str, Any]] = []
    if mode == "hybrid":
        file_hits, bodies = await _hybrid_files(atlas, query, codebase_id, k, small_vec, large_vec)
        files = []
    elif mode == "vector":
        assert large_vec is not None
        files = await atlas.codebases.search_similar(large_vec, k, where=file_where)
    else:
        files = await atlas.codebases.search_text(query, k, where=file_where)
    files_ms = (time.perf_counter() - started) * 1000

    function_where = {"project": codebase_id, "symbol_type": _FUNCTION_KINDS}
    locations = atlas.code.locations
    started = time.perf_counter()
    function_hits: list[FunctionHit] | None = None
    if mode == "hybrid":
        assert file_hits is not None
        function_hits = await _hybrid_functions(
            atlas, query, function_where, k, small_vec, file_hits, bodies
        )
        functions = []
    elif mode == "vector":
        assert small_vec is not None
        functions = await locations.search_similar(small_vec, k, where=function_where)
    else:
        functions = await locations.search_text(query, k, where=function_where)
    functions_ms = (time.perf_counter() - started) * 1000

    def score(match: Any) -> float:
        return float(match.score if match.score is not None else match.similarity)

    return SearchResult(
        query=query,
        codebase_id=codebase_id,
        mode=mode,
        embedder=name,
        files=tuple(
            file_hits
            if file_hits is not None
            else (FileHit(m.item.path.replace("\\", "/"), score(m)) for m in files)
        ),
        functions=tuple(
            function_hits
            if function_hits is not None
            else (
                FunctionHit(
                    m.item.file_path.replace("\\", "/"),
                    _qualname(m.item),
                    int(m.item.line_start),
                    score(m),
                )
                for m in functions
            )
        ),
        files_ms=files_ms,
        functions_ms=functions_ms,
    )
