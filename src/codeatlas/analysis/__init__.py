"""Source-code analysis for indexing: metrics, Python structure, chunks and graphs.

``scan_tree`` finds files, ``analyse_file`` measures, analyses and chunks one of them (in a
process pool if wanted), ``build_import_graph`` / ``build_call_graph`` link the results and
``pagerank`` ranks the nodes.
"""

from .chunks import DEFAULT_MAX_CHARS, Chunk, chunk_lines, chunk_python
from .graphs import Edge, Graph, Node, build_call_graph, build_import_graph
from .metrics import LANGUAGES, FileMetrics, detect_language, measure, split_lines
from .pagerank import pagerank
from .python import (
    Halstead,
    Import,
    PythonAnalysis,
    Symbol,
    analyse_python,
    decode_python,
    module_name,
    resolve_relative_import,
)
from .scan import (
    DEFAULT_EXCLUDE_DIRS,
    DEFAULT_INCLUDE,
    FileAnalysis,
    SourceFile,
    analyse_file,
    analyse_tree,
    scan_tree,
)

__all__ = [
    "DEFAULT_EXCLUDE_DIRS",
    "DEFAULT_INCLUDE",
    "DEFAULT_MAX_CHARS",
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
    "pagerank",
    "resolve_relative_import",
    "scan_tree",
    "split_lines",
]
