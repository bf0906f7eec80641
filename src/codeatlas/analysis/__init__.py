"""Source-code analysis for indexing: metrics, Python structure, chunks and graphs.

``scan_tree`` finds files, ``analyse_file`` measures, analyses and chunks one of them (in a
process pool if wanted), ``build_import_graph`` / ``build_call_graph`` link the results and
``pagerank`` ranks the nodes; ``dag`` holds the cycle checks the data layer uses.

Names are imported on first use, so the data layer can load one piece (``analysis.dag``,
``analysis.pagerank``) without the parser, the tokenizer and the chunker.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

# Imported now: the function shares its module's name, and a later import of the module
# ``codeatlas.analysis.pagerank`` would otherwise leave the module under that attribute.
from .pagerank import pagerank

if TYPE_CHECKING:
    from .chunks import DEFAULT_MAX_CHARS, Chunk, chunk_lines, chunk_python
    from .graphs import Edge, Graph, Node, build_call_graph, build_import_graph
    from .metrics import LANGUAGES, FileMetrics, detect_language, measure, split_lines
    from .python import (
        Halstead,
        Import,
        PythonAnalysis,
        Symbol,
        analyse_python,
        decode_python,
        module_name,
        package_prefix,
        resolve_relative_import,
    )
    from .scan import (
        DEFAULT_EXCLUDE_DIRS,
        DEFAULT_INCLUDE,
        DEFAULT_MAX_SIZE,
        FileAnalysis,
        SourceFile,
        analyse_file,
        analyse_tree,
        scan_tree,
    )
    from .text import storable, storable_json

#: public name -> the module of this package that defines it
_HOME: Final[dict[str, str]] = {
    **dict.fromkeys(("DEFAULT_MAX_CHARS", "Chunk", "chunk_lines", "chunk_python"), "chunks"),
    **dict.fromkeys(("Edge", "Graph", "Node", "build_call_graph", "build_import_graph"), "graphs"),
    **dict.fromkeys(
        ("LANGUAGES", "FileMetrics", "detect_language", "measure", "split_lines"), "metrics"
    ),
    **dict.fromkeys(
        (
            "Halstead",
            "Import",
            "PythonAnalysis",
            "Symbol",
            "analyse_python",
            "decode_python",
            "module_name",
            "package_prefix",
            "resolve_relative_import",
        ),
        "python",
    ),
    **dict.fromkeys(
        (
            "DEFAULT_EXCLUDE_DIRS",
            "DEFAULT_INCLUDE",
            "DEFAULT_MAX_SIZE",
            "FileAnalysis",
            "SourceFile",
            "analyse_file",
            "analyse_tree",
            "scan_tree",
        ),
        "scan",
    ),
    **dict.fromkeys(("storable", "storable_json"), "text"),
}

__all__ = [
    "DEFAULT_EXCLUDE_DIRS",
    "DEFAULT_INCLUDE",
    "DEFAULT_MAX_CHARS",
    "DEFAULT_MAX_SIZE",
    "LANGUAGES",
    "Chunk",
    "Edge",
    "FileAnalysis",
    "FileMetrics",
    "Graph",
    "Halstead",
    "Import",
    "Node",
    "PythonAnalysis",
    "SourceFile",
    "Symbol",
    "analyse_file",
    "analyse_python",
    "analyse_tree",
    "build_call_graph",
    "build_import_graph",
    "chunk_lines",
    "chunk_python",
    "decode_python",
    "detect_language",
    "measure",
    "module_name",
    "package_prefix",
    "pagerank",
    "resolve_relative_import",
    "scan_tree",
    "split_lines",
    "storable",
    "storable_json",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
