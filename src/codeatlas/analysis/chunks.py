"""Split source files into chunks for embedding.

Python files are cut along their structure: a module chunk for the header (docstring,
imports, constants) and for other module-level code between definitions, one chunk per
top-level function, and one per class, or, for a class longer than the cap, a chunk per
method plus class chunks for the code between them. Other files are cut into windows of
lines. A chunk longer than the cap is split at line boundaries (a single longer line is
split inside). Together the chunks cover every non-blank line of the file, in order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from .metrics import split_lines
from .python import Symbol

__all__ = ["DEFAULT_MAX_CHARS", "DEFAULT_WINDOW_LINES", "Chunk", "chunk_lines", "chunk_python"]

DEFAULT_MAX_CHARS: Final = 4000
DEFAULT_WINDOW_LINES: Final = 60


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a file: lines ``start_line..end_line`` (1-based, inclusive) and their text.

    ``kind`` is ``module``, ``function``, ``class``, ``method`` or ``lines``; ``name`` is the
    qualified name of the function or class it belongs to, None otherwise; ``part`` counts
    the pieces of a definition split for size (0 when not split).
    """

    index: int
    kind: str
    name: str | None
    start_line: int
    end_line: int
    text: str
    part: int = 0


@dataclass(frozen=True, slots=True)
class _Span:
    kind: str
    name: str | None
    start: int
    end: int


def chunk_lines(
    text: str, *, window: int = DEFAULT_WINDOW_LINES, max_chars: int = DEFAULT_MAX_CHARS
) -> list[Chunk]:
    """Return windows of at most *window* lines and *max_chars* characters, blank ones left out."""
    lines = split_lines(text)
    spans = [
        _Span("lines", None, start, min(start + window - 1, len(lines)))
        for start in range(1, len(lines) + 1, window)
    ]
    return _materialise(lines, spans, max_chars)


def chunk_python(
    text: str, symbols: Sequence[Symbol], *, max_chars: int = DEFAULT_MAX_CHARS
) -> list[Chunk]:
    """Return the chunks of Python *text* whose definitions are *symbols*.

    With no symbols (a file that did not parse, or has no definitions) the file is cut into
    module chunks of line windows.
    """
    lines = split_lines(text)
    top = [s for s in symbols if s.parent is None and s.end_line <= len(lines)]
    spans: list[_Span] = []
    line = 1
    for symbol in top:
        if symbol.start_line < line:
            continue  # nested in an earlier one (cannot happen for valid trees; be safe)
        spans.extend(_gap("module", None, line, symbol.start_line - 1))
        spans.extend(_symbol_spans(lines, symbol, symbols, max_chars))
        line = symbol.end_line + 1
    spans.extend(_gap("module", None, line, len(lines)))
    return _materialise(lines, spans, max_chars)


def _gap(kind: str, name: str | None, start: int, end: int) -> Iterator[_Span]:
    """Yield module-level code between definitions as windows of lines."""
    for first in range(start, end + 1, DEFAULT_WINDOW_LINES):
        yield _Span(kind, name, first, min(first + DEFAULT_WINDOW_LINES - 1, end))


def _symbol_spans(
    lines: Sequence[str], symbol: Symbol, symbols: Sequence[Symbol], max_chars: int
) -> list[_Span]:
    size = sum(len(lines[i - 1]) + 1 for i in range(symbol.start_line, symbol.end_line + 1))
    whole = [_Span(symbol.kind, symbol.qualname, symbol.start_line, symbol.end_line)]
    if symbol.kind != "class" or size <= max_chars:
        return whole
    methods = [s for s in symbols if s.parent == symbol.qualname and s.kind == "method"]
    if not methods:
        return whole
    spans: list[_Span] = []
    line = symbol.start_line
    for method in methods:
        if method.start_line < line:
            continue
        if method.start_line > line:
            spans.append(_Span("class", symbol.qualname, line, method.start_line - 1))
        spans.append(_Span("method", method.qualname, method.start_line, method.end_line))
        line = method.end_line + 1
    if line <= symbol.end_line:
        spans.append(_Span("class", symbol.qualname, line, symbol.end_line))
    return spans


def _materialise(lines: Sequence[str], spans: Sequence[_Span], max_chars: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    for span in spans:
        pieces = list(_split(lines, span.start, span.end, max_chars))
        for part, (start, end, text) in enumerate(pieces, 1 if len(pieces) > 1 else 0):
            if text.strip():
                chunks.append(Chunk(len(chunks), span.kind, span.name, start, end, text, part))
    return chunks


def _split(
    lines: Sequence[str], start: int, end: int, max_chars: int
) -> Iterator[tuple[int, int, str]]:
    """Yield (start, end, text) pieces of lines start..end, each at most *max_chars* long."""
    first, size = start, 0
    for number in range(start, end + 1):
        length = len(lines[number - 1]) + (1 if number > first else 0)
        if size + length > max_chars and number > first:
            yield first, number - 1, "\n".join(lines[first - 1 : number - 1])
            first, length = number, len(lines[number - 1])
            size = 0
        if length > max_chars:
            # One line longer than the cap: cut it into pieces of exactly max_chars.
            line = lines[number - 1]
            for offset in range(0, len(line), max_chars):
                yield number, number, line[offset : offset + max_chars]
            first, size = number + 1, 0
            continue
        size += length
    if first <= end:
        yield first, end, "\n".join(lines[first - 1 : end])
