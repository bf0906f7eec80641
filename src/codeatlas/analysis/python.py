"""Python source analysis from ``ast`` and ``tokenize``: structure, complexity, Halstead, MI.

Cyclomatic complexity (McCabe) of a function is 1 plus one for each decision point in its
own body (nested functions and methods are measured on their own; lambdas count towards
the function holding them):

* ``if``, ``elif``, a conditional expression (``a if c else b``);
* ``for``, ``async for``, ``while`` (their ``else`` clauses add nothing);
* each ``except`` clause (``try``, ``else`` and ``finally`` add nothing);
* each extra operand of ``and`` / ``or`` (``a and b and c`` adds 2);
* each ``for`` and each ``if`` of a comprehension;
* each ``case`` of a ``match`` except an irrefutable last one (``case _:``, the default), and
  each ``case`` guard;
* not ``with`` (no branch) and not ``assert`` (a check that ``-O`` strips, not a path the
  program's logic takes).

Halstead measures come from the token stream: operators are keywords (except ``True``,
``False`` and ``None``, which are operands) and operator/punctuation tokens, an opening and
closing bracket counting once as one operator; operands are names, numbers and strings.

The maintainability index is ``max(0, (171 - 5.2 ln V - 0.23 G - 16.2 ln L) * 100 / 171)``
with V the Halstead volume, G the total complexity (module level plus every function) and L
the code lines, capped at 100.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import keyword
import math
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from .metrics import FileMetrics, docstring_lines, measure_python_tokens, statements

__all__ = [
    "Halstead",
    "Import",
    "PythonAnalysis",
    "Symbol",
    "analyse_python",
    "analyse_python_with_metrics",
    "decode_python",
    "module_name",
    "package_prefix",
    "resolve_relative_import",
]

_PARSE_FAILURES: Final = (SyntaxError, ValueError, RecursionError, MemoryError)
_CLOSING: Final = frozenset({")", "]", "}"})
_VALUE_KEYWORDS: Final = frozenset({"True", "False", "None"})
_KEYWORDS: Final = frozenset(keyword.kwlist) - _VALUE_KEYWORDS
_FSTRING_MIDDLE: Final = getattr(tokenize, "FSTRING_MIDDLE", -1)
_FUNCTIONS: Final = (ast.FunctionDef, ast.AsyncFunctionDef)
_DECISIONS: Final = (ast.If, ast.IfExp, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler)


@dataclass(frozen=True, slots=True)
class Halstead:
    """Halstead's software-science measures of one file."""

    #: n1, n2: distinct operators and operands.
    distinct_operators: int
    distinct_operands: int
    #: N1, N2: total operators and operands.
    total_operators: int
    total_operands: int
    vocabulary: int
    length: int
    volume: float
    difficulty: float
    effort: float
    #: Seconds to write, by Halstead's 18 "elementary mental discriminations" per second.
    time: float
    #: Delivered bugs estimate, V / 3000.
    bugs: float

    @classmethod
    def from_counts(cls, n1: int, n2: int, total1: int, total2: int) -> Halstead:
        """Return the measures for n1/n2 distinct and N1/N2 total operators/operands."""
        vocabulary, length = n1 + n2, total1 + total2
        volume = length * math.log2(vocabulary) if vocabulary > 0 else 0.0
        difficulty = (n1 / 2) * (total2 / n2) if n2 > 0 else 0.0
        effort = difficulty * volume
        return cls(
            distinct_operators=n1,
            distinct_operands=n2,
            total_operators=total1,
            total_operands=total2,
            vocabulary=vocabulary,
            length=length,
            volume=volume,
            difficulty=difficulty,
            effort=effort,
            time=effort / 18,
            bugs=volume / 3000,
        )


@dataclass(frozen=True, slots=True)
class Import:
    """One imported module or name, with ``module`` made absolute where possible.

    ``import a.b`` binds ``a`` (target ``a``), ``import a.b as c`` binds ``c`` (target
    ``a.b``), ``from a import b as c`` binds ``c`` (module ``a``, target ``a.b``); a star
    import has ``name="*"`` and no alias. A relative import that cannot be resolved keeps
    its leading dots.
    """

    module: str
    name: str | None
    alias: str | None
    line: int
    #: The dotted name the alias stands for (``a.b.c`` for ``from a.b import c``).
    target: str


@dataclass(frozen=True, slots=True)
class Symbol:
    """A function, method or class: where it is, what it looks like, what it calls."""

    qualname: str
    name: str
    kind: str  # "function", "method" or "class"
    is_async: bool
    #: First line, counting decorators, and last line.
    start_line: int
    end_line: int
    signature: str
    docstring: str | None
    #: Functions: McCabe complexity. Classes: the sum of their methods' complexities.
    complexity: int
    #: Call targets as written (``os.path.join``, ``self.close``), unique, in source order.
    calls: tuple[str, ...]
    #: Classes: base classes as written (dotted names only).
    bases: tuple[str, ...] = ()
    #: The enclosing class or function, if any.
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class PythonAnalysis:
    """What one Python file defines, imports, exports and how complex it is.

    ``parse_error`` is set (and the structure empty) when the file does not decode or parse.
    """

    module: str | None
    parse_error: str | None
    symbols: tuple[Symbol, ...] = ()
    imports: tuple[Import, ...] = ()
    exports: tuple[str, ...] = ()
    function_count: int = 0
    class_count: int = 0
    #: 1 plus the decision points outside any function.
    module_complexity: int = 1
    complexity_total: int = 0
    complexity_avg: float = 0.0
    complexity_max: int = 0
    halstead: Halstead | None = None
    maintainability_index: float | None = None
    is_package: bool = field(default=False)

    @property
    def imported_modules(self) -> tuple[str, ...]:
        """Return the absolute modules imported, sorted (unresolved relative ones left out)."""
        return tuple(sorted({i.module for i in self.imports if i.module and i.module[0] != "."}))

    @property
    def import_aliases(self) -> dict[str, str]:
        """Return local name -> dotted target for every import binding a name."""
        return {i.alias: i.target for i in self.imports if i.alias is not None}


def module_name(path: str, prefix: str = "") -> tuple[str | None, bool]:
    """Return (dotted module name, is package) for a relative POSIX *path* to a .py file.

    ``a/b/__init__.py`` is package ``a.b``; a leading ``src/`` is dropped; the name is None
    when a part is not an identifier (such a file cannot be imported). *prefix* is the
    package the tree's root directory itself is (``numpy`` when the root is numpy's
    directory, see ``package_prefix``): its files are ``numpy.typing`` and so on, so that
    ``from typing import ...`` inside the package is not taken for ``numpy/typing``.
    """
    parts = path.split("/")
    if len(parts) > 1 and parts[0] == "src" and not prefix:
        parts = parts[1:]
    stem, dot, suffix = parts[-1].rpartition(".")
    if not dot or suffix not in ("py", "pyi", "pyw"):
        return None, False
    is_package = stem == "__init__"
    parts = parts[:-1] if is_package else [*parts[:-1], stem]
    if prefix:
        parts = [*prefix.split("."), *parts]
    if not parts or not all(p.isidentifier() for p in parts):
        return None, is_package
    return ".".join(parts), is_package


def package_prefix(root: Path) -> str:
    """Return the dotted package the directory *root* is, or "" when it is no package.

    A directory with an ``__init__.py`` is a package named after it, nested in its parent
    when that is one too (``.../numpy/_core`` is ``numpy._core``); Python only imports its
    files by that full name.
    """
    names: list[str] = []
    directory = Path(root).resolve()
    while (directory / "__init__.py").is_file() and directory.name.isidentifier():
        names.append(directory.name)
        if directory.parent == directory:
            break
        directory = directory.parent
    return ".".join(reversed(names))


def resolve_relative_import(
    module: str | None, is_package: bool, level: int, target: str | None
) -> str:
    """Return the absolute module of ``from <level dots><target> import ...`` in *module*.

    Unresolvable (no module name, or more dots than packages) keeps the relative form.
    """
    relative = "." * level + (target or "")
    if level == 0:
        return target or ""
    if module is None:
        return relative
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level > len(package):
        return relative
    base = package[: len(package) - level + 1]
    return ".".join([*base, target] if target else base)


def decode_python(data: bytes) -> tuple[str, str | None]:
    """Return (text, error) of Python source bytes, honouring a BOM and a coding cookie.

    On failure the text is decoded as UTF-8 with replacement characters and error says why.
    """
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding), None
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        return data.decode("utf-8", "replace"), f"decode error: {exc}"


def analyse_python(
    text: str, *, module: str | None = None, is_package: bool = False
) -> PythonAnalysis:
    """Return the analysis of Python source *text* (never raises on bad source)."""
    return analyse_python_with_metrics(text, module=module, is_package=is_package)[0]


def analyse_python_with_metrics(
    text: str,
    *,
    module: str | None = None,
    is_package: bool = False,
    size_bytes: int | None = None,
) -> tuple[PythonAnalysis, FileMetrics]:
    """Return the analysis and the line metrics of *text*, tokenizing and parsing it once."""
    try:
        tokens: list[tokenize.TokenInfo] | None = list(
            tokenize.generate_tokens(io.StringIO(text).readline)
        )
    except (tokenize.TokenError, *_PARSE_FAILURES):
        tokens = None
    try:
        tree = ast.parse(text)
    except _PARSE_FAILURES as exc:
        metrics = measure_python_tokens(text, tokens, set(), size_bytes=size_bytes)
        return _failed(module, is_package, exc), metrics
    try:
        metrics = measure_python_tokens(text, tokens, docstring_lines(tree), size_bytes=size_bytes)
        return _analyse_tree(tree, tokens, metrics, module, is_package), metrics
    except (RecursionError, MemoryError) as exc:
        metrics = measure_python_tokens(text, tokens, set(), size_bytes=size_bytes)
        return _failed(module, is_package, exc), metrics


def _failed(module: str | None, is_package: bool, exc: BaseException) -> PythonAnalysis:
    if isinstance(exc, SyntaxError):
        where = f" (line {exc.lineno})" if exc.lineno else ""
        error = f"{type(exc).__name__}: {exc.msg}{where}"
    else:
        error = f"{type(exc).__name__}: {exc}"
    return PythonAnalysis(module=module, parse_error=error, is_package=is_package)


def _analyse_tree(
    tree: ast.Module,
    tokens: Sequence[tokenize.TokenInfo] | None,
    metrics: FileMetrics,
    module: str | None,
    is_package: bool,
) -> PythonAnalysis:
    symbols = _symbols(tree)
    functions = [s for s in symbols if s.kind != "class"]
    module_complexity = 1 + _scope(tree.body)[0]
    total = module_complexity + sum(s.complexity for s in functions)
    halstead = _halstead(tokens) if tokens is not None else None
    volume = halstead.volume if halstead is not None else 0.0
    raw = 171 - 5.2 * math.log(max(volume, 1.0)) - 0.23 * total
    raw -= 16.2 * math.log(max(metrics.code_lines, 1))
    return PythonAnalysis(
        module=module,
        parse_error=None,
        symbols=symbols,
        imports=_imports(tree, module, is_package),
        exports=_exports(tree),
        function_count=len(functions),
        class_count=len(symbols) - len(functions),
        module_complexity=module_complexity,
        complexity_total=total,
        complexity_avg=sum(s.complexity for s in functions) / len(functions) if functions else 0.0,
        complexity_max=max((s.complexity for s in functions), default=0),
        halstead=halstead,
        maintainability_index=min(100.0, max(0.0, raw * 100 / 171)),
        is_package=is_package,
    )


def _halstead(tokens: Sequence[tokenize.TokenInfo]) -> Halstead:
    operators: dict[str, int] = {}
    operands: dict[str, int] = {}
    for token in tokens:
        kind, text = token.type, token.string
        if kind == tokenize.OP:
            if text not in _CLOSING:
                operators[text] = operators.get(text, 0) + 1
        elif kind == tokenize.NAME:
            counts = operators if text in _KEYWORDS else operands
            counts[text] = counts.get(text, 0) + 1
        elif kind in (tokenize.NUMBER, tokenize.STRING, _FSTRING_MIDDLE):
            operands[text] = operands.get(text, 0) + 1
    return Halstead.from_counts(
        len(operators), len(operands), sum(operators.values()), sum(operands.values())
    )


def _dotted(node: ast.expr) -> str | None:
    """Return ``a.b.c`` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _is_irrefutable(case: ast.match_case) -> bool:
    pattern = case.pattern
    return case.guard is None and isinstance(pattern, ast.MatchAs) and pattern.pattern is None


def _scope(body: Sequence[ast.AST]) -> tuple[int, tuple[str, ...]]:
    """Return (decision points, call targets) of code run in one scope.

    Enters class bodies and lambdas, not nested functions (only their decorators, defaults
    and annotations, which run in this scope).
    """
    decisions = 0
    calls: dict[str, None] = {}
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        if isinstance(node, _FUNCTIONS):
            children: list[ast.AST] = [*node.decorator_list, node.args]
            if node.returns is not None:
                children.append(node.returns)
            stack.extend(reversed(children))
            continue
        if isinstance(node, _DECISIONS):
            decisions += 1
        elif isinstance(node, ast.BoolOp):
            decisions += len(node.values) - 1
        elif isinstance(node, ast.comprehension):
            decisions += 1 + len(node.ifs)
        elif isinstance(node, ast.Match):
            cases = node.cases
            decisions += sum(1 for case in cases if case.guard is not None)
            decisions += len(cases) - (1 if cases and _is_irrefutable(cases[-1]) else 0)
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is not None:
                calls.setdefault(name)
        stack.extend(reversed(_children(node)))
    return decisions, tuple(calls)


def _children(node: ast.AST) -> list[ast.AST]:
    """Return the child nodes of *node* (``ast.iter_child_nodes`` without ``ctx``, faster)."""
    children: list[ast.AST] = []
    for name in node._fields:
        if name == "ctx":
            continue
        value = getattr(node, name, None)
        if isinstance(value, ast.AST):
            children.append(value)
        elif isinstance(value, list):
            children.extend(v for v in value if isinstance(v, ast.AST))
    return children


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    if isinstance(node, ast.ClassDef):
        arguments = ", ".join(ast.unparse(a) for a in [*node.bases, *node.keywords])
        return f"class {node.name}({arguments})" if arguments else f"class {node.name}"
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"


def _definitions(
    body: Sequence[ast.AST], parent: str | None, parent_is_class: bool
) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, str | None, bool]]:
    """Yield (definition, parent qualname, parent is a class) for every def/class, any depth."""
    stack: list[tuple[ast.AST, str | None, bool]] = [(n, parent, parent_is_class) for n in body]
    stack.reverse()
    while stack:
        node, owner, in_class = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node, owner, in_class
            qualname = f"{owner}.{node.name}" if owner else node.name
            is_class = isinstance(node, ast.ClassDef)
            stack.extend((n, qualname, is_class) for n in reversed(node.body))
        elif isinstance(node, ast.stmt | ast.excepthandler | ast.match_case):
            # Definitions inside if/try/with/for/match blocks keep the same parent.
            children = [
                c
                for c in ast.iter_child_nodes(node)
                if isinstance(c, ast.stmt | ast.excepthandler | ast.match_case)
            ]
            stack.extend((c, owner, in_class) for c in reversed(children))


def _symbols(tree: ast.Module) -> tuple[Symbol, ...]:
    found: list[Symbol] = []
    for node, owner, in_class in _definitions(tree.body, None, False):
        qualname = f"{owner}.{node.name}" if owner else node.name
        decisions, calls = _scope(node.body)
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        if isinstance(node, ast.ClassDef):
            kind, bases = "class", tuple(b for b in map(_dotted, node.bases) if b is not None)
        else:
            kind, bases = ("method" if in_class else "function"), ()
        found.append(
            Symbol(
                qualname=qualname,
                name=node.name,
                kind=kind,
                is_async=isinstance(node, ast.AsyncFunctionDef),
                start_line=start,
                end_line=node.end_lineno or node.lineno,
                signature=_signature(node),
                docstring=ast.get_docstring(node),
                complexity=1 + decisions,
                calls=calls,
                bases=bases,
                parent=owner,
            )
        )
    method_totals: dict[str, int] = {}
    for symbol in found:
        if symbol.kind == "method" and symbol.parent is not None:
            method_totals[symbol.parent] = method_totals.get(symbol.parent, 0) + symbol.complexity
    symbols = [
        dataclasses.replace(s, complexity=method_totals.get(s.qualname, 0))
        if s.kind == "class"
        else s
        for s in found
    ]
    symbols.sort(key=lambda s: (s.start_line, s.end_line))
    return tuple(symbols)


def _imports(tree: ast.Module, module: str | None, is_package: bool) -> tuple[Import, ...]:
    found: list[Import] = []
    for node in statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    found.append(Import(alias.name, None, alias.asname, node.lineno, alias.name))
                else:
                    top = alias.name.partition(".")[0]
                    found.append(Import(alias.name, None, top, node.lineno, top))
        elif isinstance(node, ast.ImportFrom):
            source = resolve_relative_import(module, is_package, node.level, node.module)
            for alias in node.names:
                bound = None if alias.name == "*" else alias.asname or alias.name
                joiner = "" if not source or source.endswith(".") else "."
                target = f"{source}{joiner}{alias.name}"
                found.append(Import(source, alias.name, bound, node.lineno, target))
    found.sort(key=lambda i: i.line)
    return tuple(found)


def _literal_names(node: ast.expr | None) -> list[str] | None:
    if not isinstance(node, ast.List | ast.Tuple):
        return None
    names = [e.value for e in node.elts if isinstance(e, ast.Constant)]
    if len(names) != len(node.elts) or not all(isinstance(n, str) for n in names):
        return None
    return [str(n) for n in names]


def _exports(tree: ast.Module) -> tuple[str, ...]:
    """Return ``__all__`` when every change to it is a literal, else the public names."""
    declared: list[str] | None = None
    literal = True
    public: dict[str, None] = {}
    for node in _top_level(tree.body):
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                names = _literal_names(node.value)
                if names is None:
                    literal = False
                elif isinstance(node, ast.AugAssign):
                    declared = [*(declared or []), *names]
                else:
                    declared = names
                continue
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and not name.id.startswith("_"):
                        public.setdefault(name.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if not node.name.startswith("_"):
                public.setdefault(node.name)
        elif (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and _dotted(node.value.func.value) == "__all__"
        ):
            call = node.value
            method = node.value.func.attr
            if method == "extend" and len(call.args) == 1:
                names = _literal_names(call.args[0])
            elif (
                method == "append"
                and len(call.args) == 1
                and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, str)
            ):
                names = [call.args[0].value]
            else:
                names = None
            if names is None:
                literal = False
            else:
                declared = [*(declared or []), *names]
    if declared is not None and literal:
        return tuple(dict.fromkeys(declared))
    return tuple(public)


def _top_level(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """Yield module-level statements, looking inside top-level if/try blocks."""
    for node in body:
        if isinstance(node, ast.If):
            yield from _top_level([*node.body, *node.orelse])
        elif isinstance(node, ast.Try | ast.TryStar):
            handlers = [s for h in node.handlers for s in h.body]
            yield from _top_level([*node.body, *handlers, *node.orelse, *node.finalbody])
        else:
            yield node
