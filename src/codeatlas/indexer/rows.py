"""Rows of one analysed file for each table, every string made storable.

PostgreSQL text cannot hold NUL and UTF-8 cannot carry lone surrogates; the file's text was
made storable when it was read, and docstrings, signatures and names (which escape
sequences in the source can fill with either) are made storable here.

Measures stored per file: ``cyclomatic_complexity`` is the largest McCabe complexity of the
file's functions (the module level's when it has none); ``maintainability_index``, the
Halstead measures and the line counts come from ``codeatlas.analysis``;
``documentation_coverage`` is the share of functions and classes with a docstring;
``last_modified`` is the file's mtime in whole seconds since the epoch. Dependency counts
come from the import graph built before the writes (and are corrected by the graph stage
for files whose counts moved); ``pagerank_score`` is set by the graph stage.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

import numpy as np
import numpy.typing as npt

from ..analysis.python import Import, PythonAnalysis, Symbol, module_name
from ..analysis.scan import FileAnalysis, SourceFile
from ..analysis.text import storable, storable_json
from ..models import (
    CodebaseMetadata,
    CodebaseMetadataCreate,
    CodeEmbeddingCreate,
    CodeFileCreate,
    CodeLocationCreate,
)
from .changes import CODE_PATH_LENGTH, mtime_seconds

__all__ = [
    "FileRows",
    "analysis_from_row",
    "chunks_of",
    "file_rows",
    "summary_text",
    "symbol_text",
    "symbols_of",
]

_SHORT: Final = 255
_HEAD_CHARS: Final = 1500


@dataclass(frozen=True, slots=True)
class FileRows:
    """Every row that belongs to one file; written together or not at all."""

    path: str
    metadata: CodebaseMetadataCreate
    code_file: CodeFileCreate | None
    chunks: tuple[CodeEmbeddingCreate, ...]
    locations: tuple[CodeLocationCreate, ...]
    #: what was changed to make the file storable (its text, or names and docstrings)
    notes: tuple[str, ...] = ()


def _unstorable_in_structure(python: PythonAnalysis | None) -> int:
    """Return how many characters of the analysis' strings cannot be stored as they are."""
    if python is None:
        return 0
    count = 0
    for symbol in python.symbols:
        for text in (symbol.qualname, symbol.signature, symbol.docstring or "", *symbol.calls):
            count += storable(text)[1]
    for imp in python.imports:
        count += storable(f"{imp.module}{imp.name or ''}{imp.alias or ''}{imp.target}")[1]
    return count + sum(storable(e)[1] for e in python.exports)


def _text(value: str | None) -> str | None:
    return None if value is None else storable(value)[0]


def summary_text(analysis: FileAnalysis) -> str:
    """Return the text embedded for a file: path, module docstring and top-level names.

    Methods and the rest of the header are left out: in a large module they outweigh what
    the module is about (measured on the stdlib: with them, zipfile.py ranked fifth for
    "read and write zip archives"; without, first).
    """
    head = analysis.chunks[0].text if analysis.chunks else ""
    parts = [analysis.path.replace("/", " ").removesuffix(".py")]
    docstring = _module_docstring(head) if analysis.python is not None else None
    parts.append(docstring[:_HEAD_CHARS] if docstring else head[: _HEAD_CHARS // 2])
    python = analysis.python
    if python is not None:
        top = [s for s in python.symbols if s.parent is None]
        parts.append(" ".join(s.name for s in top))
        parts.extend(
            s.docstring.strip().splitlines()[0] for s in top if s.docstring and s.docstring.strip()
        )
    return "\n".join(parts)


def _module_docstring(head: str) -> str | None:
    try:
        return ast.get_docstring(ast.parse(head))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def symbol_text(analysis: FileAnalysis, symbol: Symbol) -> str:
    """Return the text embedded for a function or class: names, signature and docstring."""
    doc = (symbol.docstring or "")[:_HEAD_CHARS]
    return f"{symbol.qualname} {symbol.signature}\n{doc}\n{analysis.path}"


def symbols_of(analysis: FileAnalysis) -> tuple[Symbol, ...]:
    """Return the symbols that get code_locations rows (none for a path too long)."""
    if analysis.python is None or len(analysis.path) > CODE_PATH_LENGTH:
        return ()
    return analysis.python.symbols


def chunks_of(analysis: FileAnalysis) -> int:
    """Return how many code_embeddings rows the file gets."""
    return len(analysis.chunks) if len(analysis.path) <= CODE_PATH_LENGTH else 0


def file_rows(
    codebase_id: str,
    root: str,
    source: SourceFile,
    analysis: FileAnalysis,
    file_id: UUID,
    summary: npt.NDArray[np.float32],
    chunk_vectors: npt.NDArray[np.float32],
    symbol_vectors: npt.NDArray[np.float32],
    counts: tuple[int, int] | None = None,
    stamps: Mapping[str, Any] | None = None,
) -> FileRows:
    """Return the rows of one file; *file_id* is its code_files id (kept across runs).

    *counts* are its (dependency_count, dependent_count) when the graph is known. *stamps*
    say which embedders made the vectors (``embedder``: chunks and symbols; ``file_embedder``:
    the summary, recorded on the code_files row, as codebase_metadata has no JSON column for
    it); each chunk and symbol row records its ``embedder`` in its metadata.
    """
    stamps = stamps or {}
    made_by = {"embedder": stamps["embedder"]} if "embedder" in stamps else {}
    metadata = _metadata_row(codebase_id, root, source, analysis, summary, counts)
    notes = analysis.notes
    replaced = _unstorable_in_structure(analysis.python)
    if replaced:
        notes = (
            *notes,
            f"{replaced} NUL or lone surrogate characters in docstrings, names or "
            "signatures replaced with U+FFFD",
        )
    if len(analysis.path) > CODE_PATH_LENGTH:
        return FileRows(analysis.path, metadata, None, (), (), notes)
    symbols = symbols_of(analysis)
    chunks = tuple(
        CodeEmbeddingCreate(
            code_file_id=file_id,
            chunk_index=chunk.index,
            chunk_text=storable(chunk.text)[0],
            embedding=vector,
            metadata=storable_json(
                {
                    "kind": chunk.kind,
                    "name": chunk.name,
                    "start_line": chunk.start_line,
                    "end_line": chunk.end_line,
                    "part": chunk.part,
                    **made_by,
                }
            ),
        )
        for chunk, vector in zip(analysis.chunks, chunk_vectors, strict=True)
    )
    locations = tuple(
        _location_row(codebase_id, analysis, s, vector, made_by)
        for s, vector in zip(symbols, symbol_vectors, strict=True)
    )
    return FileRows(
        analysis.path,
        metadata,
        _code_file_row(codebase_id, file_id, analysis, notes, len(chunks), len(locations), stamps),
        chunks,
        locations,
        notes,
    )


def _symbol_json(symbol: Symbol) -> dict[str, Any]:
    doc = (symbol.docstring or "").strip()
    return {
        "name": symbol.qualname,
        "short_name": symbol.name,
        "kind": symbol.kind,
        "async": symbol.is_async,
        "line": symbol.start_line,
        "end_line": symbol.end_line,
        "signature": symbol.signature,
        "complexity": symbol.complexity,
        "parent": symbol.parent,
        "calls": list(symbol.calls),
        "bases": list(symbol.bases),
        "doc": doc.splitlines()[0] if doc else None,
    }


def _import_json(imp: Import) -> dict[str, Any]:
    return {
        "module": imp.module,
        "name": imp.name,
        "alias": imp.alias,
        "line": imp.line,
        "target": imp.target,
    }


def analysis_from_row(row: CodebaseMetadata, module_prefix: str) -> PythonAnalysis:
    """Rebuild the graph-relevant part of a file's analysis from its stored JSON columns."""
    module, is_package = module_name(row.path, module_prefix)
    symbols = tuple(
        Symbol(
            qualname=s["name"],
            name=s["short_name"],
            kind=s["kind"],
            is_async=bool(s.get("async")),
            start_line=s["line"],
            end_line=s["end_line"],
            signature=s.get("signature") or "",
            docstring=s.get("doc"),
            complexity=s.get("complexity", 1),
            calls=tuple(s.get("calls") or ()),
            bases=tuple(s.get("bases") or ()),
            parent=s.get("parent"),
        )
        for s in sorted(
            [*(row.classes or []), *(row.functions or [])], key=lambda s: (s["line"], s["name"])
        )
    )
    imports = tuple(
        Import(i["module"], i.get("name"), i.get("alias"), i.get("line", 0), i["target"])
        for i in row.imports or []
    )
    return PythonAnalysis(
        module=module,
        parse_error=None,
        symbols=symbols,
        imports=imports,
        exports=tuple(str(e) for e in row.exports or []),
        is_package=is_package,
    )


def _python_values(python: PythonAnalysis) -> dict[str, Any]:
    halstead = python.halstead
    documented = [s for s in python.symbols if s.docstring]
    functions = [s for s in python.symbols if s.kind != "class"]
    values: dict[str, Any] = {
        "function_count": python.function_count,
        "class_count": python.class_count,
        "cyclomatic_complexity": float(python.complexity_max or python.module_complexity),
        "maintainability_index": python.maintainability_index or 0.0,
        "documentation_coverage": len(documented) / len(python.symbols) if python.symbols else 0.0,
        "imports": storable_json([_import_json(i) for i in python.imports]),
        "exports": storable_json(list(python.exports)),
        "functions": storable_json([_symbol_json(s) for s in functions]),
        "classes": storable_json([_symbol_json(s) for s in python.symbols if s.kind == "class"]),
        "dependencies": storable_json(list(python.imported_modules)),
    }
    if halstead is not None:
        values |= {
            "halstead_vocabulary": halstead.vocabulary,
            "halstead_length": halstead.length,
            "halstead_volume": halstead.volume,
            "halstead_difficulty": halstead.difficulty,
            "halstead_effort": halstead.effort,
        }
    return values


def _metadata_row(
    codebase_id: str,
    root: str,
    source: SourceFile,
    analysis: FileAnalysis,
    vector: npt.NDArray[np.float32],
    counts: tuple[int, int] | None,
) -> CodebaseMetadataCreate:
    metrics = analysis.metrics
    python = analysis.python
    values = _python_values(python) if python is not None and python.parse_error is None else {}
    if counts is not None:
        values["dependency_count"], values["dependent_count"] = counts
    return CodebaseMetadataCreate(
        codebase_id=codebase_id,
        codebase_path=root,
        path=analysis.path,
        # the stamp change detection compares: the size and mtime the scan saw
        size=source.size,
        lines=metrics.total_lines,
        total_lines=metrics.total_lines,
        code_lines=metrics.code_lines,
        comment_lines=metrics.comment_lines,
        blank_lines=metrics.blank_lines,
        language=(analysis.language or "unknown")[:50],
        file_type="source",
        last_modified=mtime_seconds(source.mtime_ns),
        vector_embedding=vector,
        **values,
    )


def _code_file_row(
    codebase_id: str,
    file_id: UUID,
    analysis: FileAnalysis,
    notes: tuple[str, ...],
    chunks: int,
    symbols: int,
    stamps: Mapping[str, Any],
) -> CodeFileCreate:
    # "chunks", "symbols" and the embedder stamps are what change detection checks
    metadata: dict[str, Any] = {"chunks": chunks, "symbols": symbols, **stamps}
    python = analysis.python
    if python is not None:
        metadata["module"] = python.module
        if python.parse_error:
            metadata["parse_error"] = python.parse_error
    if notes:
        metadata["notes"] = list(notes)
    return CodeFileCreate(
        id=file_id,
        file_path=analysis.path,
        project_name=codebase_id,
        content=analysis.text,
        language=analysis.language,
        size_bytes=min(analysis.size_bytes, 2**31 - 1),
        line_count=analysis.metrics.total_lines,
        hash=analysis.content_hash or None,
        metadata=storable_json(metadata),
    )


def _location_row(
    codebase_id: str,
    analysis: FileAnalysis,
    symbol: Symbol,
    vector: npt.NDArray[np.float32],
    made_by: Mapping[str, Any],
) -> CodeLocationCreate:
    python = analysis.python
    return CodeLocationCreate(
        project=codebase_id,
        file_path=analysis.path,
        line_start=symbol.start_line,
        line_end=symbol.end_line,
        symbol_type=symbol.kind,
        symbol_name=storable(symbol.name[:_SHORT])[0],
        parent_symbol=_text(symbol.parent[:_SHORT]) if symbol.parent else None,
        signature=_text(symbol.signature),
        documentation=_text(symbol.docstring),
        metadata=storable_json(
            {
                "qualname": symbol.qualname,
                "module": python.module if python is not None else None,
                "complexity": symbol.complexity,
                "async": symbol.is_async,
                **made_by,
            }
        ),
        embedding=vector,
    )
