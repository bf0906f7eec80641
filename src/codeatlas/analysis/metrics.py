"""Per-file measurements for any text file: size, line counts by kind, language.

Every line is exactly one of blank (whitespace only), comment (only comment text) or code
(anything else, including a line of code with a trailing comment), so
``blank_lines + comment_lines + code_lines == total_lines``. Lines are split on ``\\n``,
``\\r\\n`` and ``\\r`` only, as Python's tokenizer and editors count them. Python lines are
classified from tokens, docstrings counting as comments; other languages by a scanner that
knows their comment markers and skips string literals.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import PurePath
from types import MappingProxyType
from typing import Final

__all__ = [
    "LANGUAGES",
    "FileMetrics",
    "detect_language",
    "docstring_lines",
    "measure",
    "measure_python_tokens",
    "split_lines",
    "statements",
]

#: File extension (lowercase, with the dot) -> language name.
LANGUAGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        ".py": "python", ".pyi": "python", ".pyw": "python", ".pyx": "cython",
        ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp",
        ".hh": "cpp", ".hxx": "cpp", ".m": "objective-c", ".mm": "objective-c",
        ".cs": "csharp", ".java": "java", ".kt": "kotlin", ".kts": "kotlin", ".scala": "scala",
        ".swift": "swift", ".go": "go", ".rs": "rust", ".zig": "zig", ".dart": "dart",
        ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
        ".ts": "typescript", ".tsx": "typescript", ".mts": "typescript", ".cts": "typescript",
        ".php": "php", ".rb": "ruby", ".rake": "ruby", ".pl": "perl", ".pm": "perl",
        ".lua": "lua", ".r": "r", ".jl": "julia", ".ex": "elixir", ".exs": "elixir",
        ".erl": "erlang", ".hrl": "erlang", ".hs": "haskell", ".ml": "ocaml", ".mli": "ocaml",
        ".clj": "clojure", ".lisp": "lisp", ".el": "elisp", ".scm": "scheme",
        ".sh": "shell", ".bash": "shell", ".zsh": "shell", ".fish": "shell", ".ps1": "powershell",
        ".bat": "batch", ".cmd": "batch", ".sql": "sql", ".html": "html", ".htm": "html",
        ".xml": "xml", ".xsl": "xml", ".svg": "xml", ".plist": "xml", ".vue": "vue",
        ".css": "css", ".scss": "scss", ".less": "less", ".md": "markdown",
        ".markdown": "markdown", ".rst": "restructuredtext", ".txt": "text", ".toml": "toml",
        ".json": "json", ".yaml": "yaml", ".yml": "yaml", ".ini": "ini", ".cfg": "ini",
        ".conf": "conf", ".mk": "make", ".cmake": "cmake", ".proto": "protobuf",
        ".graphql": "graphql", ".tf": "terraform", ".nix": "nix", ".tex": "latex",
        ".asm": "assembly", ".s": "assembly", ".d": "d", ".v": "verilog", ".vhd": "vhdl",
    }
)  # fmt: skip

# Files known by their whole name.
_NAMED_FILES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "makefile": "make", "gnumakefile": "make", "dockerfile": "dockerfile",
        "cmakelists.txt": "cmake", "gemfile": "ruby", "rakefile": "ruby", "vagrantfile": "ruby",
        "build": "starlark", "workspace": "starlark", "justfile": "make",
    }
)  # fmt: skip

_HASH_STYLE: Final = frozenset(
    {
        "python", "cython", "shell", "ruby", "perl", "r", "julia", "elixir", "yaml", "toml",
        "make", "cmake", "dockerfile", "conf", "starlark", "nix", "terraform", "powershell",
        "graphql",
    }
)  # fmt: skip
_C_STYLE: Final = frozenset(
    {
        "c", "cpp", "objective-c", "csharp", "java", "kotlin", "scala", "swift", "go", "rust",
        "zig", "dart", "javascript", "typescript", "php", "protobuf", "d", "verilog", "scss",
        "less",
    }
)  # fmt: skip
_DASH_STYLE: Final = frozenset({"sql", "lua", "haskell", "vhdl"})
_MARKUP_STYLE: Final = frozenset({"html", "xml", "vue"})

_STRINGS: Final = r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\''
_COMMENT_SCANNERS: Final[Mapping[str, re.Pattern[str]]] = MappingProxyType(
    {
        "hash": re.compile(rf"(?P<c>#[^\n]*)|{_STRINGS}"),
        "c": re.compile(rf"(?P<c>//[^\n]*|/\*.*?(?:\*/|\Z))|{_STRINGS}|`(?:\\.|[^`\\])*`", re.S),
        "css": re.compile(rf"(?P<c>/\*.*?(?:\*/|\Z))|{_STRINGS}", re.S),
        "dash": re.compile(
            rf"(?P<c>--[^\n]*|/\*.*?(?:\*/|\Z)|\{{-.*?(?:-\}}|\Z))|{_STRINGS}", re.S
        ),
        "markup": re.compile(r"(?P<c><!--.*?(?:-->|\Z))", re.S),
        "ini": re.compile(r"(?P<c>^[ \t]*[#;][^\n]*)", re.M),
        "latex": re.compile(r"(?P<c>(?<!\\)%[^\n]*)"),
        "lisp": re.compile(rf"(?P<c>;[^\n]*)|{_STRINGS}"),
        "erlang": re.compile(rf"(?P<c>%[^\n]*)|{_STRINGS}"),
        "batch": re.compile(r"(?P<c>^[ \t]*(?:@?rem\b|::)[^\n]*)", re.M | re.I),
        "assembly": re.compile(r"(?P<c>[;#][^\n]*|/\*.*?(?:\*/|\Z))", re.S),
    }
)
_SCANNER_OF: Final[Mapping[str, str]] = MappingProxyType(
    {
        **dict.fromkeys(_HASH_STYLE, "hash"),
        **dict.fromkeys(_C_STYLE, "c"),
        **dict.fromkeys(_DASH_STYLE, "dash"),
        **dict.fromkeys(_MARKUP_STYLE, "markup"),
        "css": "css", "ini": "ini", "latex": "latex", "lisp": "lisp", "clojure": "lisp",
        "scheme": "lisp", "elisp": "lisp", "erlang": "erlang", "batch": "batch",
        "assembly": "assembly", "ocaml": "dash",
    }
)  # fmt: skip
_NEWLINES: Final = re.compile(r"\r\n?")
_BLOCK_FIELDS: Final = ("finalbody", "orelse", "cases", "handlers", "body")
_LAYOUT_TOKENS: Final = frozenset(
    {
        tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER,
        tokenize.ENCODING,
    }
)  # fmt: skip
_NOT_NEWLINE: Final = re.compile(r"[^\n]")


@dataclass(frozen=True, slots=True)
class FileMetrics:
    """Size and line counts of one file; ``language`` is None when unknown."""

    language: str | None
    size_bytes: int
    total_lines: int
    code_lines: int
    comment_lines: int
    blank_lines: int


def detect_language(path: str | PurePath) -> str | None:
    """Return the language of *path* from its extension or well-known name, or None."""
    name = PurePath(path).name.lower()
    named = _NAMED_FILES.get(name)
    if named is not None:
        return named
    dot = name.rfind(".")
    return LANGUAGES.get(name[dot:]) if dot > 0 else None


def split_lines(text: str) -> list[str]:
    """Return the lines of *text* split on ``\\n``, ``\\r\\n`` and ``\\r``, without ends."""
    lines = _NEWLINES.sub("\n", text).split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def measure(text: str, language: str | None, *, size_bytes: int | None = None) -> FileMetrics:
    """Return the metrics of *text* in *language* (*size_bytes* defaults to its UTF-8 size)."""
    if language == "python":
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        except (tokenize.TokenError, SyntaxError, ValueError, RecursionError, MemoryError):
            tokens = None
        return measure_python_tokens(text, tokens, _docstring_lines(text), size_bytes=size_bytes)
    if language is not None and language in _SCANNER_OF:
        code, comment = _scanned_lines(text, _SCANNER_OF[language])
        return _count(text, language, code, comment, size_bytes)
    return _count(text, language, None, set(), size_bytes)


def measure_python_tokens(
    text: str,
    tokens: Sequence[tokenize.TokenInfo] | None,
    docstring_lines: Set[int],
    *,
    size_bytes: int | None = None,
) -> FileMetrics:
    """Return the metrics of Python *text* from its *tokens* (None: it did not tokenize).

    For callers that tokenize and parse anyway: lines of *docstring_lines* count as comment.
    """
    if tokens is None:
        code, comment = _scanned_lines(text, "hash")
        return _count(text, "python", code, comment, size_bytes)
    code, comment = set(), set()
    for token in tokens:
        if token.type in _LAYOUT_TOKENS:
            continue
        (first, _), (last, _) = token.start, token.end
        if token.type == tokenize.COMMENT:
            comment.add(first)
        elif token.type == tokenize.STRING and first in docstring_lines and last in docstring_lines:
            comment.update(range(first, last + 1))
        else:
            code.update(range(first, last + 1))
    return _count(text, "python", code, comment, size_bytes)


def _count(
    text: str,
    language: str | None,
    code: set[int] | None,
    comment: set[int],
    size_bytes: int | None,
) -> FileMetrics:
    """Return the metrics given the code and comment lines (None: every line is code)."""
    lines = split_lines(text)
    if size_bytes is None:
        size_bytes = len(text.encode("utf-8", "surrogatepass"))
    blank = {i for i, line in enumerate(lines, 1) if not line.strip()}
    code_lines = comment_lines = 0
    for i in range(1, len(lines) + 1):
        if i in blank:
            continue
        if code is None or i in code:
            code_lines += 1
        elif i in comment:
            comment_lines += 1
        else:
            # Neither (a scanner missed it): count it as code rather than lose it.
            code_lines += 1
    return FileMetrics(
        language=language,
        size_bytes=size_bytes,
        total_lines=len(lines),
        code_lines=code_lines,
        comment_lines=comment_lines,
        blank_lines=len(blank),
    )


def _scanned_lines(text: str, style: str) -> tuple[set[int], set[int]]:
    """Return (lines with code, lines with comments), 1-based, using the *style* scanner."""
    text = _NEWLINES.sub("\n", text)
    pieces: list[str] = []
    comment: set[int] = set()
    last = 0
    line = 1
    for match in _COMMENT_SCANNERS[style].finditer(text):
        if match.group("c") is None:
            continue
        start, end = match.span()
        pieces.append(text[last:start])
        line += text.count("\n", last, start)
        span = text[start:end]
        newlines = span.count("\n")
        comment.update(range(line, line + newlines + 1))
        line += newlines
        # Keep the newlines so that the code text lines up with the original lines.
        pieces.append(_NOT_NEWLINE.sub(" ", span))
        last = end
    pieces.append(text[last:])
    code_text = "".join(pieces).split("\n")
    code = {i for i, content in enumerate(code_text, 1) if content.strip()}
    return code, comment


def _docstring_lines(text: str) -> set[int]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    return docstring_lines(tree)


def docstring_lines(tree: ast.AST) -> set[int]:
    """Return the lines of the module, class and function docstrings in *tree*."""
    lines: set[int] = set()
    for node in statements(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
            and body[0].end_lineno is not None
        ):
            lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def statements(tree: ast.AST) -> Iterator[ast.AST]:
    """Yield *tree* and every statement (and except/case clause) in it, not expressions.

    Much cheaper than ``ast.walk`` for what only statements hold (definitions, imports).
    """
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for name in _BLOCK_FIELDS:
            block = getattr(node, name, None)
            if block:
                stack.extend(reversed(block))
