"""Walk a source tree and analyse its files (one process-pool-friendly function per file).

``analyse_file`` is a top-level function taking and returning picklable frozen dataclasses,
so a ``concurrent.futures.ProcessPoolExecutor`` can spread the files over cores::

    with ProcessPoolExecutor(2) as pool:
        for analysis in pool.map(analyse_file, scan_tree(root), chunksize=32):
            ...
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Collection, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from .chunks import DEFAULT_MAX_CHARS, Chunk, chunk_lines, chunk_python
from .metrics import FileMetrics, detect_language, measure
from .python import PythonAnalysis, analyse_python_with_metrics, decode_python, module_name
from .text import storable

__all__ = [
    "DEFAULT_EXCLUDE_DIRS",
    "DEFAULT_INCLUDE",
    "FileAnalysis",
    "SourceFile",
    "analyse_file",
    "analyse_tree",
    "scan_tree",
]

#: Extensions (with the dot) and whole file names scanned by default: source and text files.
DEFAULT_INCLUDE: Final = (
    ".py", ".pyi", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".java", ".kt", ".scala",
    ".swift", ".go", ".rs", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".rb", ".php",
    ".pl", ".lua", ".r", ".jl", ".ex", ".exs", ".erl", ".hs", ".ml", ".clj", ".sh", ".bash",
    ".zsh", ".ps1", ".bat", ".sql", ".html", ".css", ".scss", ".vue", ".xml", ".md", ".rst",
    ".txt", ".toml", ".json", ".yaml", ".yml", ".ini", ".cfg", ".proto", ".tf",
    "Makefile", "Dockerfile", "CMakeLists.txt",
)  # fmt: skip
#: Directory names never entered.
DEFAULT_EXCLUDE_DIRS: Final = (
    "__pycache__", ".git", ".hg", ".svn", "node_modules", ".venv", "venv", "site-packages",
    "dist-packages", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox",
    ".idea", ".vscode",
)  # fmt: skip
#: Files larger than this are skipped by default (generated data, not code to read).
DEFAULT_MAX_SIZE: Final = 4 * 1024 * 1024
_BINARY_PROBE: Final = 8192


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file found by ``scan_tree``: *path* is relative to the root, in POSIX form."""

    path: str
    absolute_path: Path
    size: int
    mtime_ns: int
    _hash: list[str] = field(default_factory=list, repr=False, compare=False)

    def content_hash(self) -> str:
        """Return the SHA-256 hex digest of the file's bytes (read once, then remembered)."""
        if not self._hash:
            self._hash.append(hashlib.sha256(self.absolute_path.read_bytes()).hexdigest())
        return self._hash[0]


@dataclass(frozen=True, slots=True)
class FileAnalysis:
    """Everything learnt from one file; ``error`` is set when it could not be read."""

    path: str
    language: str | None
    size_bytes: int
    content_hash: str
    metrics: FileMetrics
    binary: bool = False
    python: PythonAnalysis | None = None
    chunks: tuple[Chunk, ...] = ()
    error: str | None = None
    #: The text analysed (decoded, NUL and lone surrogates replaced), None for binary or
    #: unreadable files.
    text: str | None = field(default=None, repr=False)
    #: What was changed to make the text storable ("3 NUL characters replaced ...").
    notes: tuple[str, ...] = ()


def scan_tree(
    root: Path,
    *,
    include: Collection[str] | None = DEFAULT_INCLUDE,
    exclude_dirs: Collection[str] = DEFAULT_EXCLUDE_DIRS,
    max_size: int | None = DEFAULT_MAX_SIZE,
    follow_symlinks: bool = False,
) -> Iterator[SourceFile]:
    """Yield the files under *root* in a stable (sorted, depth-first) order.

    *include* holds extensions (``.py``, matched case-insensitively) and exact file names;
    None takes every file. Symlinks are skipped unless *follow_symlinks*, and then each
    directory is entered once (no loops). Unreadable directories and files are skipped.
    """
    root = Path(root)
    suffixes = {i.lower() for i in include or () if i.startswith(".")}
    names = {i for i in include or () if not i.startswith(".")}
    excluded = set(exclude_dirs)
    seen: set[tuple[int, int]] = set()
    try:
        top = root.stat()
    except OSError:
        return
    seen.add((top.st_dev, top.st_ino))
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        subdirs: list[tuple[Path, str]] = []
        for entry in entries:
            try:
                if entry.is_symlink() and not follow_symlinks:
                    continue
                info = entry.stat(follow_symlinks=True)
            except OSError:
                continue
            relative = f"{prefix}{entry.name}"
            if stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if entry.name not in excluded and key not in seen:
                    seen.add(key)
                    subdirs.append((Path(entry.path), relative + "/"))
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            if include is not None:
                dot = entry.name.rfind(".")
                suffix = entry.name[dot:].lower() if dot > 0 else ""
                if suffix not in suffixes and entry.name not in names:
                    continue
            if max_size is not None and info.st_size > max_size:
                continue
            if not os.access(entry.path, os.R_OK):
                continue
            yield SourceFile(relative, Path(entry.path), info.st_size, info.st_mtime_ns)
        stack.extend(reversed(subdirs))


def analyse_file(
    source: SourceFile, *, max_chars: int = DEFAULT_MAX_CHARS, module_prefix: str = ""
) -> FileAnalysis:
    """Return metrics, Python analysis (for Python files) and chunks of one file.

    Never raises for the file's content: unreadable files set ``error``, broken Python sets
    ``python.parse_error``, binary files (a NUL byte near the start) get no chunks. The text
    is made storable first (undecodable bytes, NUL characters and lone surrogates become
    U+FFFD, each change said in ``notes``). *module_prefix* is the package the tree's root
    is (see ``package_prefix``).
    """
    language = detect_language(source.path)
    try:
        data = source.absolute_path.read_bytes()
    except OSError as exc:
        empty = FileMetrics(language, source.size, 0, 0, 0, 0)
        return FileAnalysis(source.path, language, source.size, "", empty, error=str(exc))
    digest = hashlib.sha256(data).hexdigest()
    if b"\0" in data[:_BINARY_PROBE]:
        metrics = FileMetrics(language, len(data), 0, 0, 0, 0)
        return FileAnalysis(source.path, language, len(data), digest, metrics, binary=True)
    notes: list[str] = []
    if language == "python":
        text, decode_error = decode_python(data)
    else:
        try:
            text, decode_error = data.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            text, decode_error = data.decode("utf-8", "replace"), f"decode error: {exc}"
    if decode_error is not None:
        notes.append(f"undecodable bytes replaced with U+FFFD ({decode_error})")
    text, replaced = storable(text)
    if replaced:
        notes.append(f"{replaced} NUL or lone surrogate characters replaced with U+FFFD")
    if language != "python":
        metrics = measure(text, language, size_bytes=len(data))
        chunks = tuple(chunk_lines(text, max_chars=max_chars))
        return FileAnalysis(
            source.path,
            language,
            len(data),
            digest,
            metrics,
            chunks=chunks,
            text=text,
            notes=tuple(notes),
        )

    module, is_package = module_name(source.path, module_prefix)
    if decode_error is not None:
        python = PythonAnalysis(module=module, parse_error=decode_error, is_package=is_package)
        metrics = measure(text, language, size_bytes=len(data))
    else:
        python, metrics = analyse_python_with_metrics(
            text, module=module, is_package=is_package, size_bytes=len(data)
        )
    chunks = tuple(chunk_python(text, python.symbols, max_chars=max_chars))
    return FileAnalysis(
        source.path,
        language,
        len(data),
        digest,
        metrics,
        python=python,
        chunks=chunks,
        text=text,
        notes=tuple(notes),
    )


def analyse_tree(
    root: Path,
    *,
    workers: int = 1,
    include: Collection[str] | None = DEFAULT_INCLUDE,
    exclude_dirs: Collection[str] = DEFAULT_EXCLUDE_DIRS,
    max_size: int | None = DEFAULT_MAX_SIZE,
) -> Iterator[FileAnalysis]:
    """Yield ``analyse_file`` of every file ``scan_tree`` finds, in scan order.

    With ``workers > 1`` the files are analysed in that many processes.
    """
    files = scan_tree(root, include=include, exclude_dirs=exclude_dirs, max_size=max_size)
    if workers <= 1:
        yield from map(analyse_file, files)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(analyse_file, files, chunksize=16)
