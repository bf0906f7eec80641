"""Source analysis: metrics, Python structure, chunks, graphs, PageRank and the stdlib scan."""

from __future__ import annotations

import hashlib
import math
import pickle
import sysconfig
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeatlas.analysis import (
    Chunk,
    FileAnalysis,
    PythonAnalysis,
    Symbol,
    analyse_file,
    analyse_python,
    analyse_tree,
    build_call_graph,
    build_import_graph,
    chunk_lines,
    chunk_python,
    decode_python,
    detect_language,
    measure,
    module_name,
    pagerank,
    resolve_relative_import,
    scan_tree,
    split_lines,
)
from codeatlas.errors import InvalidInputError

# -- PageRank ---------------------------------------------------------------------------------


def test_pagerank_cycle_is_uniform() -> None:
    scores = pagerank(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
    assert scores == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, abs=1e-9)


def test_pagerank_star_points_to_the_hub() -> None:
    leaves = [f"leaf{i}" for i in range(4)]
    scores = pagerank(["hub", *leaves], [(leaf, "hub") for leaf in leaves])
    # The hub is dangling, so it spreads its score evenly; solved by hand:
    # leaf = (0.15 + 0.85 * hub) / 5 and hub = leaf + 0.85 * 4 * leaf, so hub = 4.4 leaf.
    leaf = 1 / 8.4
    assert scores["hub"] == pytest.approx(4.4 * leaf, abs=1e-8)
    for name in leaves:
        assert scores[name] == pytest.approx(leaf, abs=1e-8)
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-12)


def test_pagerank_dangling_nodes_and_isolated_nodes() -> None:
    scores = pagerank(["a", "b", "c", "d"], [("a", "b"), ("a", "c")])
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-12)
    assert scores["b"] == pytest.approx(scores["c"])
    assert scores["a"] == pytest.approx(scores["d"])
    assert scores["b"] > scores["a"]


def test_pagerank_no_edges_is_uniform_and_empty_is_empty() -> None:
    assert pagerank(["x", "y"], []) == {"x": 0.5, "y": 0.5}
    assert pagerank([], [("a", "b")]) == {}


def test_pagerank_weights_parallel_edges_and_unknown_endpoints() -> None:
    weighted = pagerank(["a", "b", "c"], [("a", "b", 3.0), ("a", "c", 1.0), ("b", "a"), ("c", "a")])
    doubled = pagerank(
        ["a", "b", "c"],
        [("a", "b"), ("a", "b"), ("a", "b"), ("a", "c"), ("b", "a"), ("c", "a"), ("c", "zz")],
    )
    assert weighted == pytest.approx(doubled, abs=1e-12)
    assert weighted["b"] > weighted["c"]


def test_pagerank_matches_a_dense_solution() -> None:
    nodes = ["a", "b", "c", "d", "e"]
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "a"), ("b", "e")]
    scores = pagerank(nodes, edges, tol=1e-14, max_iter=1000)
    n, d = len(nodes), 0.85
    out = {s: sum(1 for e in edges if e[0] == s) for s in nodes}
    # x = (1 - d)/n + d * M x, checked residual-wise (no linear algebra library needed).
    for node in nodes:
        incoming = sum(scores[s] / out[s] for s, t in edges if t == node)
        assert scores[node] == pytest.approx((1 - d) / n + d * incoming, abs=1e-10)


def test_pagerank_rejects_bad_parameters() -> None:
    with pytest.raises(InvalidInputError):
        pagerank(["a"], [], damping=1.5)
    with pytest.raises(InvalidInputError):
        pagerank(["a"], [], max_iter=0)
    with pytest.raises(InvalidInputError):
        pagerank(["a", "b"], [("a", "b", -1.0)])


# -- metrics ----------------------------------------------------------------------------------

PY_SAMPLE = '''"""Module doc.

More.
"""
import os  # trailing comment

# a comment

def f(x):
    """Doc."""
    s = """not a
docstring"""
    return x
'''


def test_metrics_python_counts_docstrings_as_comments() -> None:
    m = measure(PY_SAMPLE, "python")
    assert (m.total_lines, m.code_lines, m.comment_lines, m.blank_lines) == (13, 5, 5, 3)
    assert m.size_bytes == len(PY_SAMPLE.encode())
    assert m.language == "python"


def test_metrics_c_like_comments_and_strings() -> None:
    text = 'int a; // c\n/* block\n\n more */ int b;\n  /* x */\n"// not a comment"\n'
    m = measure(text, "c")
    assert (m.total_lines, m.code_lines, m.comment_lines, m.blank_lines) == (6, 3, 2, 1)


def test_metrics_shell_and_unknown_languages() -> None:
    shell = measure("#!/bin/sh\n# note\necho '#not' # yes\n\n", "shell")
    assert (shell.code_lines, shell.comment_lines, shell.blank_lines) == (1, 2, 1)
    plain = measure("a\r\nb\rc\n\n", None)
    assert (plain.total_lines, plain.code_lines, plain.blank_lines) == (4, 3, 1)


def test_metrics_python_that_does_not_tokenize_falls_back() -> None:
    m = measure('x = """never closed\n# c\n', "python")
    assert m.total_lines == 2
    assert m.code_lines + m.comment_lines + m.blank_lines == 2


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a/b.py", "python"),
        ("x.pyi", "python"),
        ("m.c", "c"),
        ("m.h", "c"),
        ("app.js", "javascript"),
        ("app.ts", "typescript"),
        ("lib.rs", "rust"),
        ("mix.ex", "elixir"),
        ("mix.exs", "elixir"),
        ("main.go", "go"),
        ("Main.java", "java"),
        ("x.rb", "ruby"),
        ("run.sh", "shell"),
        ("README.md", "markdown"),
        ("pyproject.toml", "toml"),
        ("data.json", "json"),
        ("ci.YAML", "yaml"),
        ("Makefile", "make"),
        ("Dockerfile", "dockerfile"),
        ("noext", None),
        (".hidden", None),
    ],
)
def test_detect_language(path: str, language: str | None) -> None:
    assert detect_language(path) == language


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.text(alphabet=st.sampled_from("ab #/*\"'\\\n\r\t\x0c;-<!>{}:")), st.text()),
    st.sampled_from(["python", "c", "shell", "sql", "html", "css", "ini", "markdown", None]),
)
def test_metrics_line_kinds_add_up(text: str, language: str | None) -> None:
    m = measure(text, language)
    assert m.blank_lines + m.code_lines + m.comment_lines == m.total_lines
    assert m.total_lines == len(split_lines(text))


# -- Python analysis --------------------------------------------------------------------------

COMPLEX = '''
def f(x, y=1):
    """F doc."""
    if x and y or x:
        return os.path.join("a", helper(x))
    elif y:
        return [i for i in range(3) if i if i > 1]
    for i in x:
        try:
            pass
        except ValueError:
            pass
        except Exception:
            pass
    while y:
        y = y - 1 if y else 0
    with open(x) as fh:
        assert fh
    return None

def simple():
    return 1

class C(Base, metaclass=M):
    def m(self):
        self.n()
        match self:
            case 1:
                pass
            case [a] if a:
                pass
            case _:
                pass

    @property
    async def n(self) -> int:
        def inner():
            return lambda v: v or 1
        return inner()
'''


def _symbol(analysis: PythonAnalysis, qualname: str) -> Symbol:
    return next(s for s in analysis.symbols if s.qualname == qualname)


def test_cyclomatic_complexity_exact_values() -> None:
    analysis = analyse_python(COMPLEX, module="pkg.mod")
    # 1 + if + (and, or) + elif + comprehension (for, if, if) + for + 2 except + while + ifexp
    assert _symbol(analysis, "f").complexity == 13
    assert _symbol(analysis, "simple").complexity == 1
    # 1 + case 1 + (case [a] + its guard); the irrefutable `case _` is the default.
    assert _symbol(analysis, "C.m").complexity == 4
    assert _symbol(analysis, "C.n").complexity == 1
    # The lambda's `or` belongs to inner, which is measured apart from n.
    assert _symbol(analysis, "C.n.inner").complexity == 2
    assert _symbol(analysis, "C").complexity == 4 + 1
    assert analysis.function_count == 5
    assert analysis.class_count == 1
    assert analysis.complexity_max == 13
    assert analysis.complexity_avg == pytest.approx((13 + 1 + 4 + 1 + 2) / 5)
    assert analysis.module_complexity == 1
    assert analysis.complexity_total == 1 + 13 + 1 + 4 + 1 + 2


def test_symbols_describe_definitions() -> None:
    analysis = analyse_python(COMPLEX, module="pkg.mod")
    assert [s.qualname for s in analysis.symbols] == ["f", "simple", "C", "C.m", "C.n", "C.n.inner"]
    f = _symbol(analysis, "f")
    assert (f.kind, f.start_line, f.end_line) == ("function", 2, 19)
    assert f.signature == "def f(x, y=1)"
    assert f.docstring == "F doc."
    assert f.calls == ("os.path.join", "helper", "range", "open")
    n = _symbol(analysis, "C.n")
    assert (n.kind, n.is_async, n.parent, n.start_line) == ("method", True, "C", 35)
    assert n.signature == "async def n(self) -> int"
    assert n.calls == ("inner",)
    assert _symbol(analysis, "C.n.inner").kind == "function"
    c = _symbol(analysis, "C")
    assert (c.signature, c.bases) == ("class C(Base, metaclass=M)", ("Base",))
    assert _symbol(analysis, "C.m").calls == ("self.n",)


def test_halstead_on_a_tiny_snippet() -> None:
    # Operators: def ( : return * (n1 = 5, N1 = 5); operands: f a a a (n2 = 2, N2 = 4).
    analysis = analyse_python("def f(a):\n    return a * a\n")
    h = analysis.halstead
    assert h is not None
    assert (h.distinct_operators, h.distinct_operands) == (5, 2)
    assert (h.total_operators, h.total_operands) == (5, 4)
    assert (h.vocabulary, h.length) == (7, 9)
    assert h.volume == pytest.approx(9 * math.log2(7))
    assert h.difficulty == pytest.approx(5 / 2 * 4 / 2)
    assert h.effort == pytest.approx(5.0 * 9 * math.log2(7))
    assert h.time == pytest.approx(h.effort / 18)
    assert h.bugs == pytest.approx(h.volume / 3000)
    # G = 1 (module) + 1 (f), L = 2 code lines.
    expected = (171 - 5.2 * math.log(9 * math.log2(7)) - 0.23 * 2 - 16.2 * math.log(2)) / 1.71
    assert analysis.maintainability_index == pytest.approx(expected)


def test_halstead_counts_values_as_operands() -> None:
    h = analyse_python("x = None if y else True\n").halstead
    assert h is not None
    # Operators: = if else; operands: x None y True.
    assert (h.distinct_operators, h.distinct_operands) == (3, 4)


def test_maintainability_index_is_clamped() -> None:
    empty = analyse_python("")
    assert empty.maintainability_index == pytest.approx((171 - 0.23) / 1.71)
    assert empty.halstead is not None and empty.halstead.volume == 0.0
    huge = analyse_python(
        "\n".join(f"def f{i}(a, b):\n    return a and b or a and b" for i in range(300))
    )
    assert huge.maintainability_index == 0.0


def test_imports_resolve_relative_names() -> None:
    source = (
        "import os.path\nimport numpy as np\nfrom . import sibling\n"
        "from ..core import thing as t\nfrom .sub.deep import *\nfrom .... import too_far\n"
    )
    analysis = analyse_python(source, module="pkg.sub.mod")
    assert [(i.module, i.name, i.alias, i.target) for i in analysis.imports] == [
        ("os.path", None, "os", "os"),
        ("numpy", None, "np", "numpy"),
        ("pkg.sub", "sibling", "sibling", "pkg.sub.sibling"),
        ("pkg.core", "thing", "t", "pkg.core.thing"),
        ("pkg.sub.sub.deep", "*", None, "pkg.sub.sub.deep.*"),
        ("....", "too_far", "too_far", "....too_far"),
    ]
    assert analysis.imported_modules == (
        "numpy",
        "os.path",
        "pkg.core",
        "pkg.sub",
        "pkg.sub.sub.deep",
    )
    assert analysis.import_aliases["t"] == "pkg.core.thing"


@pytest.mark.parametrize(
    ("module", "is_package", "level", "target", "expected"),
    [
        ("a.b.c", False, 1, None, "a.b"),
        ("a.b.c", False, 2, "x", "a.x"),
        ("a.b.c", False, 3, "x", "...x"),
        ("a.b", True, 1, "x", "a.b.x"),
        ("a.b", True, 2, None, "a"),
        ("a", True, 1, None, "a"),
        ("a", False, 1, "x", ".x"),
        (None, False, 1, "x", ".x"),
        ("a.b", False, 0, "os", "os"),
    ],
)
def test_resolve_relative_import(
    module: str | None, is_package: bool, level: int, target: str | None, expected: str
) -> None:
    assert resolve_relative_import(module, is_package, level, target) == expected


def test_module_name_from_path() -> None:
    assert module_name("email/mime/text.py") == ("email.mime.text", False)
    assert module_name("email/__init__.py") == ("email", True)
    assert module_name("src/pkg/mod.pyi") == ("pkg.mod", False)
    assert module_name("test/bad-name.py") == (None, False)
    assert module_name("notes.txt") == (None, False)


def test_exports() -> None:
    literal = analyse_python('__all__ = ["b", "a"]\n__all__ += ("c",)\n__all__.append("d")\n')
    assert literal.exports == ("b", "a", "c", "d")
    computed = analyse_python(
        "import os\n__all__ = base.__all__ + ['x']\n"
        "def pub(): pass\ndef _priv(): pass\nclass K: pass\nX, _y = 1, 2\n"
        "if flag:\n    def cond(): pass\n"
    )
    assert computed.exports == ("pub", "K", "X", "cond")


@pytest.mark.parametrize(
    "source",
    [
        "def f(:\n",
        "print 'py2'\n",
        "x = 1\0\n",
        "(" * 300 + ")" * 300 + "\n",
        "x = " + "-" * 200_000 + "1\n",
        "if True:\n  x\n    y\n",
        'x = """never closed\n',
    ],
)
def test_bad_python_sets_parse_error(source: str) -> None:
    analysis = analyse_python(source, module="m")
    assert analysis.parse_error is not None
    assert analysis.symbols == () and analysis.maintainability_index is None


def test_decode_python_honours_cookies_and_reports_errors() -> None:
    assert decode_python("# -*- coding: latin-1 -*-\nx = 'é'\n".encode("latin-1"))[1] is None
    assert decode_python(b"\xef\xbb\xbfx = 1\n") == ("x = 1\n", None)
    text, error = decode_python(b"# coding: uft-8\nx = 1\n")
    assert error is not None and "decode error" in error and "x = 1" in text
    _, error = decode_python(b"x = '\xff\xfe'\n")
    assert error is not None


# -- chunks -----------------------------------------------------------------------------------


def test_python_chunks_follow_structure() -> None:
    analysis = analyse_python(COMPLEX)
    chunks = chunk_python(COMPLEX, analysis.symbols)
    assert [(c.kind, c.name, c.start_line, c.end_line) for c in chunks] == [
        ("function", "f", 2, 19),
        ("function", "simple", 21, 22),
        ("class", "C", 24, 39),
    ]
    assert chunks[0].text.startswith("def f(x, y=1):")
    header = '"""Doc."""\nimport os\n\n' + COMPLEX
    chunks = chunk_python(header, analyse_python(header).symbols)
    assert (chunks[0].kind, chunks[0].start_line, chunks[0].end_line) == ("module", 1, 4)


def test_large_classes_are_chunked_per_method() -> None:
    analysis = analyse_python(COMPLEX)
    chunks = chunk_python(COMPLEX, analysis.symbols, max_chars=200)
    kinds = [(c.kind, c.name) for c in chunks]
    assert ("class", "C") in kinds
    assert ("method", "C.m") in kinds
    assert ("method", "C.n") in kinds
    assert all(len(c.text) <= 200 for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_long_lines_are_split() -> None:
    text = "x = '" + "a" * 9000 + "'\ny = 1\n"
    chunks = chunk_python(text, analyse_python(text).symbols, max_chars=4000)
    assert [len(c.text) for c in chunks] == [4000, 4000, 1006, 5]
    assert [c.part for c in chunks] == [1, 2, 3, 4]
    assert "".join(c.text for c in chunks[:3]) == text.splitlines()[0]


def _covered(chunks: list[Chunk]) -> set[int]:
    return {line for c in chunks for line in range(c.start_line, c.end_line + 1)}


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("ab \n\t#")), max_size=600),
    st.integers(min_value=1, max_value=20),
    st.integers(min_value=1, max_value=80),
)
def test_line_chunks_cover_the_file(text: str, window: int, max_chars: int) -> None:
    chunks = chunk_lines(text, window=window, max_chars=max_chars)
    lines = split_lines(text)
    nonblank = {i for i, line in enumerate(lines, 1) if line.strip()}
    assert nonblank <= _covered(chunks)
    assert all(len(c.text) <= max_chars for c in chunks)
    starts = [c.start_line for c in chunks]
    assert starts == sorted(starts)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["def", "class", "code"]),
            st.integers(min_value=0, max_value=12),
        ),
        max_size=12,
    ),
    st.integers(min_value=40, max_value=400),
)
def test_python_chunks_cover_the_file(parts: list[tuple[str, int]], max_chars: int) -> None:
    pieces = []
    for i, (kind, size) in enumerate(parts):
        if kind == "def":
            pieces.append(f"@deco\ndef f{i}(a):\n" + "    a = a + 1\n" * size + "    return a\n")
        elif kind == "class":
            methods = "".join(f"    def m{j}(self):\n        return {j}\n\n" for j in range(size))
            pieces.append(f"class C{i}:\n    x = 1\n" + methods)
        else:
            pieces.append("value = 1\n" * size + "\n")
    text = "".join(pieces)
    analysis = analyse_python(text)
    assert analysis.parse_error is None
    chunks = chunk_python(text, analysis.symbols, max_chars=max_chars)
    nonblank = {i for i, line in enumerate(split_lines(text), 1) if line.strip()}
    assert nonblank <= _covered(chunks)
    assert all(len(c.text) <= max_chars for c in chunks)


# -- graphs and the tree scan -----------------------------------------------------------------

TREE = {
    "pkg/__init__.py": "from .core import run\n__all__ = ['run']\n",
    "pkg/util.py": "def tool():\n    return 1\n\ndef _private():\n    return tool()\n",
    "pkg/core.py": (
        "import pkg.util as u\nfrom . import util\nfrom .util import tool as t\n\n"
        "def helper():\n    return 1\n\n"
        "def run():\n    helper()\n    u.tool()\n    util.tool()\n    t()\n    missing()\n"
        "    A().m()\n\n"
        "class A:\n    def __init__(self):\n        self.x = 1\n"
        "    def m(self):\n        return self.n()\n    def n(self):\n        return 2\n\n"
        "class B(A):\n    def k(self):\n        def local():\n            return 3\n"
        "        local()\n        return self.m()\n"
    ),
    "main.py": (
        "import os\nimport pkg\nfrom pkg.core import B\n\n"
        "def main():\n    pkg.run()\n    B().k()\n    os.getcwd()\n"
    ),
    "bad.py": "def broken(:\n",
    "notes.md": "# Title\n\ntext\n",
    "__pycache__/x.py": "x = 1\n",
    "node_modules/y.js": "var y;\n",
}


def _write_tree(root: Path) -> None:
    for relative, text in TREE.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    _write_tree(tmp_path)
    return tmp_path


def _analyses(root: Path) -> list[FileAnalysis]:
    return [analyse_file(f) for f in scan_tree(root)]


def test_scan_tree_finds_files_in_order_and_skips_excluded(tree: Path) -> None:
    files = list(scan_tree(tree))
    assert [f.path for f in files] == [
        "bad.py", "main.py", "notes.md", "pkg/__init__.py", "pkg/core.py", "pkg/util.py",
    ]  # fmt: skip
    main = files[1]
    assert main.absolute_path == tree / "main.py"
    assert main.size == len(TREE["main.py"])
    assert main.content_hash() == hashlib.sha256(TREE["main.py"].encode()).hexdigest()
    assert [f.path for f in scan_tree(tree, include=(".md",))] == ["notes.md"]
    everything = [f.path for f in scan_tree(tree, include=None, exclude_dirs=())]
    assert "__pycache__/x.py" in everything and "node_modules/y.js" in everything


def test_scan_tree_survives_symlink_loops_and_unreadable_entries(tree: Path) -> None:
    (tree / "pkg" / "loop").symlink_to(tree, target_is_directory=True)
    (tree / "dangling.py").symlink_to(tree / "nowhere.py")
    plain = [f.path for f in scan_tree(tree)]
    followed = [f.path for f in scan_tree(tree, follow_symlinks=True)]
    assert plain == followed
    assert list(scan_tree(tree / "does-not-exist")) == []


def test_analyse_file_combines_metrics_python_and_chunks(tree: Path) -> None:
    by_path = {a.path: a for a in _analyses(tree)}
    core = by_path["pkg/core.py"]
    assert core.python is not None and core.python.module == "pkg.core"
    assert core.language == "python" and core.metrics.total_lines == TREE["pkg/core.py"].count("\n")
    assert core.content_hash == hashlib.sha256(TREE["pkg/core.py"].encode()).hexdigest()
    assert {c.name for c in core.chunks} >= {"helper", "run", "A", "B"}
    init = by_path["pkg/__init__.py"]
    assert init.python is not None and init.python.is_package and init.python.module == "pkg"
    bad = by_path["bad.py"]
    assert bad.python is not None and bad.python.parse_error is not None
    assert bad.chunks and bad.chunks[0].kind == "module"
    notes = by_path["notes.md"]
    assert notes.python is None and notes.language == "markdown" and notes.chunks[0].kind == "lines"


def test_analyse_file_handles_binary_undecodable_and_vanished_files(tmp_path: Path) -> None:
    (tmp_path / "blob.json").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin.py").write_bytes(b"x = '\xe9'\n")
    (tmp_path / "cookie.py").write_bytes(b"# coding: nope\nx = 1\n")
    (tmp_path / "gone.py").write_text("x = 1\n")
    files = {f.path: f for f in scan_tree(tmp_path)}
    (tmp_path / "gone.py").unlink()
    blob = analyse_file(files["blob.json"])
    assert blob.binary and blob.chunks == ()
    for name in ("latin.py", "cookie.py"):
        result = analyse_file(files[name])
        assert result.python is not None and result.python.parse_error is not None
        assert "decode error" in result.python.parse_error
        assert result.metrics.total_lines == 2 - (name == "latin.py")
    gone = analyse_file(files["gone.py"])
    assert gone.error is not None and gone.chunks == ()


def test_results_are_picklable_and_run_in_a_process_pool(tree: Path) -> None:
    files = list(scan_tree(tree))
    files[0].content_hash()
    assert pickle.loads(pickle.dumps(files)) == files
    serial = [analyse_file(f) for f in files]
    assert pickle.loads(pickle.dumps(serial)) == serial
    with ProcessPoolExecutor(2) as pool:
        assert list(pool.map(analyse_file, files)) == serial
    assert list(analyse_tree(tree, workers=2)) == serial


def test_import_graph(tree: Path) -> None:
    files = [(a.path, a.python) for a in _analyses(tree) if a.python is not None]
    graph = build_import_graph(files)
    # A module that does not parse is still a module of the tree.
    assert {n.id: n.kind for n in graph.nodes} == {
        "bad": "module", "main": "module", "pkg": "package", "pkg.core": "module",
        "pkg.util": "module",
    }  # fmt: skip
    assert {(e.source, e.target, e.weight) for e in graph.edges} == {
        ("main", "pkg", 1.0),
        ("main", "pkg.core", 1.0),
        ("pkg", "pkg.core", 1.0),
        ("pkg.core", "pkg.util", 3.0),
    }
    assert all(e.type == "imports" for e in graph.edges)
    ranks = graph.pagerank()
    assert sum(ranks.values()) == pytest.approx(1.0)
    assert max(ranks, key=ranks.__getitem__) == "pkg.util"


def test_call_graph_resolution(tree: Path) -> None:
    files = [(a.path, a.python) for a in _analyses(tree) if a.python is not None]
    graph = build_call_graph(files)
    ids = {n.id for n in graph.nodes}
    assert "pkg.core:B.k.local" in ids and "pkg.core:A.m" in ids
    edges = {(e.source, e.target) for e in graph.edges}
    assert edges == {
        ("pkg.util:_private", "pkg.util:tool"),
        ("pkg.core:run", "pkg.core:helper"),
        ("pkg.core:run", "pkg.util:tool"),
        ("pkg.core:run", "pkg.core:A.__init__"),
        ("pkg.core:A.m", "pkg.core:A.n"),
        ("pkg.core:B.k", "pkg.core:B.k.local"),
        ("pkg.core:B.k", "pkg.core:A.m"),
        ("main:main", "pkg.core:run"),
        # B() runs the __init__ B inherits from A.
        ("main:main", "pkg.core:A.__init__"),
    }
    node = next(n for n in graph.nodes if n.id == "pkg.core:A.m")
    assert (node.label, node.file_path, node.kind) == ("A.m", "pkg/core.py", "method")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_whole_stdlib_is_analysed_without_errors() -> None:
    root = Path(sysconfig.get_paths()["stdlib"])
    results = list(analyse_tree(root, workers=2))
    python = [(a.path, a.python) for a in results if a.python is not None]
    assert len(python) > 1000
    assert all(a.error is None for a in results)
    broken = {path for path, p in python if p.parse_error is not None}
    assert any("badsyntax" in path for path in broken)
    assert any(path.startswith("lib2to3/tests/data/") for path in broken)
    assert len(broken) < 50
    assert sum(len(a.chunks) for a in results) > 10_000
    imports = build_import_graph(python)
    assert ("json", "json.decoder") in {(e.source, e.target) for e in imports.edges}
    calls = build_call_graph(python)
    assert len(calls.edges) > 10_000
    ranks = imports.pagerank()
    assert sum(ranks.values()) == pytest.approx(1.0)
