"""The indexer on hostile files, on small packages (import resolution) and its stages."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

import codeatlas
from codeatlas.analysis import analyse_file, build_import_graph, module_name, package_prefix
from codeatlas.analysis.scan import SourceFile
from codeatlas.embedders import HashingEmbedder
from codeatlas.errors import InvalidInputError
from codeatlas.indexer import STAGES, Indexer, IndexReport, Progress
from codeatlas.indexer.maintenance import vacuum
from codeatlas.indexer.parse import parse
from codeatlas.indexer.scan import scan

# -- hostile files ---------------------------------------------------------------------------

MAX_SIZE = 500_000


def hostile_tree(root: Path) -> dict[str, str]:
    """Write one file of each hostile kind under *root*; return path -> expected outcome."""
    root.mkdir(parents=True)
    files: dict[str, bytes] = {
        "ok.py": b'"""A fine module."""\n\n\ndef fine():\n    return 1\n',
        # an escaped NUL in a docstring (as pip's vendored chardet/utf1632prober.py has)
        "nul_docstring.py": b'def probe():\n    """Looks for ( \\0 [nonzero] )+ runs."""\n',
        # a raw NUL past the binary probe (8 KiB): text, but PostgreSQL cannot hold it
        "nul_raw.txt": b"x" * 9000 + b"\x00after\n",
        "surrogate.py": b'def s():\n    """lone \\ud800 surrogate"""\n    return "\\udfff"\n',
        "latin1.py": b"# no coding cookie\nname = '\xe9t\xe9'\n",
        "binary.py": b"\x7fELF\x00\x00\x01\x02" + bytes(range(256)),
        "syntax.py": b"def broken(:\n    pass\n",
        "big.py": b"x = 1\n" * (MAX_SIZE // 6 + 10),
        "deep.py": b"x = 1" + b" + 1" * 100_000 + b"\n",
        "nested.py": b"x = " + b"[" * 300 + b"]" * 300 + b"\n",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    os.mkfifo(root / "pipe.py")
    (root / "dangling.py").symlink_to(root / "missing.py")
    (root / "loop.py").symlink_to(root / "loop.py")
    (root / "sub").mkdir()
    (root / "sub" / "mod.py").write_text("from .. import ok\n")
    (root / "sub" / "back").symlink_to(root, target_is_directory=True)
    return {
        "ok.py": "indexed",
        "nul_docstring.py": "sanitised",
        "nul_raw.txt": "sanitised",
        "surrogate.py": "sanitised",
        "latin1.py": "sanitised",
        "binary.py": "skipped:binary",
        "syntax.py": "parse error",
        "big.py": f"skipped:larger than {MAX_SIZE}",
        "deep.py": "parse error",
        "nested.py": "parse error",
        "pipe.py": "skipped:not a regular file",
        "dangling.py": "skipped:symbolic link",
        "loop.py": "skipped:symbolic link",
        "sub/mod.py": "indexed",
    }


def assert_accounted(report: IndexReport) -> None:
    assert report.files_scanned == (
        report.files_indexed + report.files_unchanged + report.files_skipped
    )
    assert all(s.reason for s in report.skipped)


async def test_hostile_files_are_stored_made_storable_or_skipped_with_a_reason(
    atlas: codeatlas.Atlas, tmp_path: Path
) -> None:
    root = tmp_path / "hostile"
    expected = hostile_tree(root)
    events: list[Progress] = []
    indexer = Indexer(
        atlas, workers=0, max_file_size=MAX_SIZE, maintain_indexes=False, on_progress=events.append
    )
    report = await indexer.index(root, codebase_id="hostile")

    assert_accounted(report)
    assert report.files_scanned == len(expected)
    skipped = {s.path: s.reason for s in report.skipped}
    sanitised = {n.path for n in report.sanitised}
    parse_errors = {n.path: n.note for n in report.parse_errors}
    for path, outcome in expected.items():
        if outcome.startswith("skipped:"):
            assert outcome.removeprefix("skipped:") in skipped[path], (path, skipped.get(path))
        else:
            assert path not in skipped, (path, skipped[path])
        assert (path in sanitised) == (outcome == "sanitised"), path
    assert set(parse_errors) == {"syntax.py", "deep.py", "nested.py", "latin1.py"}
    assert "RecursionError" in parse_errors["deep.py"]
    assert report.files_indexed == len(expected) - len(skipped)

    stored = {f.file_path: f for f in (await atlas.code.list({"project_name": "hostile"})).items}
    assert set(stored) == {p for p, o in expected.items() if not o.startswith("skipped")}
    assert "\ufffd" in (stored["nul_raw.txt"].content or "")
    assert "\x00" not in (stored["nul_raw.txt"].content or "")
    [probe] = await atlas.code.locations.symbols("hostile", file_path="nul_docstring.py")
    assert probe.documentation == "Looks for ( \ufffd [nonzero] )+ runs."
    [s] = await atlas.code.locations.symbols("hostile", file_path="surrogate.py")
    assert s.documentation == "lone \ufffd surrogate"
    assert "\ufffd" in (stored["latin1.py"].content or "")
    assert await atlas.codebases.count({"codebase_id": "hostile"}) == len(stored)
    # progress came for every stage that had work, in order
    seen = list(dict.fromkeys(e.stage for e in events))
    assert seen == [s for s in STAGES if s in seen] and {"scan", "parse", "write"} <= set(seen)

    again = await indexer.index(root, codebase_id="hostile")
    assert (again.files_indexed, again.files_unchanged) == (0, report.files_indexed)
    assert {s.path for s in again.skipped} == set(skipped)
    assert again.rows_stored == {**report.rows_stored, "codebase_snapshots": 2}
    assert not again.graph_rebuilt


async def test_symlinks_followed_are_reported_when_broken_or_looping(tmp_path: Path) -> None:
    root = tmp_path / "links"
    hostile_tree(root)
    found = scan(root, follow_symlinks=True, max_file_size=MAX_SIZE)
    reasons = {s.path: s.reason for s in found.skipped}
    assert reasons["loop.py"] == "symbolic link loop"
    assert "broken symbolic link" in reasons["dangling.py"]
    # the directory link back to the root is not entered twice
    assert [f.path for f in found.files].count("sub/mod.py") == 1
    assert not any(f.path.startswith("sub/back/") for f in found.files)


async def test_a_file_that_vanishes_before_it_is_read_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "gone.py"
    path.write_text("x = 1\n")
    source = SourceFile("gone.py", path, 6, path.stat().st_mtime_ns)
    path.unlink()
    parsed = await parse([source], module_prefix="", workers=0)
    assert parsed.analyses == ()
    [skipped] = parsed.skipped
    assert skipped.path == "gone.py" and skipped.reason.startswith("unreadable:")


async def test_indexer_refuses_bad_arguments(atlas: codeatlas.Atlas, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="embedder must produce 768-d"):
        Indexer(atlas, embedder=HashingEmbedder(1536))
    with pytest.raises(InvalidInputError, match="not one string"):
        Indexer(atlas, exclude_dirs="tests")
    with pytest.raises(InvalidInputError, match="not a directory"):
        await Indexer(atlas).index(tmp_path / "missing")


# -- import resolution -----------------------------------------------------------------------

PACKAGE = {
    "__init__.py": "from .core import run\n",
    # a submodule named like a stdlib module
    "typing/__init__.py": "from typing import TypedDict\n\n\nclass Options(TypedDict):\n    x: int",
    "core.py": textwrap.dedent(
        """\
        from typing import TypedDict, Any
        import typing
        import json
        from . import util
        from .typing import Options


        def run(options: Options) -> Any:
            return util.helper(json.dumps(options))
        """
    ),
    "util.py": "import os.path\n\n\ndef helper(x):\n    return os.path.join(x)\n",
    "sub/__init__.py": "from .. import util\n",
    "sub/leaf.py": "from .. import core\nfrom ..util import helper\nfrom . import sibling\n",
    "sub/sibling.py": "import typing\nimport mypkg.util\n",
}


def write_package(root: Path) -> Path:
    package = root / "mypkg"
    for relative, text in PACKAGE.items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def import_edges(root: Path) -> set[tuple[str, str]]:
    prefix = package_prefix(root)
    files = scan(root).files
    analyses = [analyse_file(f, module_prefix=prefix) for f in files]
    graph = build_import_graph([(a.path, a.python) for a in analyses if a.python is not None])
    return {(e.source, e.target) for e in graph.edges}


EXPECTED_EDGES = {
    ("mypkg", "mypkg.core"),
    ("mypkg.core", "mypkg.util"),
    ("mypkg.core", "mypkg.typing"),  # only the explicit relative import
    ("mypkg.sub", "mypkg.util"),
    ("mypkg.sub.leaf", "mypkg.core"),
    ("mypkg.sub.leaf", "mypkg.util"),
    ("mypkg.sub.leaf", "mypkg.sub.sibling"),
    ("mypkg.sub.sibling", "mypkg.util"),
}


@pytest.mark.parametrize("rooted_at", ["package", "parent"])
def test_imports_resolve_as_python_does(tmp_path: Path, rooted_at: str) -> None:
    package = write_package(tmp_path / "repo")
    root = package if rooted_at == "package" else package.parent
    assert package_prefix(root) == ("mypkg" if rooted_at == "package" else "")
    # `from typing import TypedDict` and `import typing` mean the stdlib's typing, never
    # mypkg/typing (whose own `from typing import` must not point at itself either)
    assert import_edges(root) == EXPECTED_EDGES


def test_module_names_under_a_package_root() -> None:
    assert module_name("typing/__init__.py", "numpy") == ("numpy.typing", True)
    assert module_name("src/a.py", "pkg") == ("pkg.src.a", False)
    assert module_name("src/a.py") == ("a", False)
    assert module_name("core/_x.py", "numpy") == ("numpy.core._x", False)


def test_package_prefix_walks_up_nested_packages(tmp_path: Path) -> None:
    inner = tmp_path / "outer" / "inner"
    inner.mkdir(parents=True)
    (tmp_path / "outer" / "__init__.py").write_text("")
    assert package_prefix(inner) == ""
    (inner / "__init__.py").write_text("")
    assert package_prefix(inner) == "outer.inner"
    assert package_prefix(tmp_path) == ""


async def test_a_stdlib_named_submodule_does_not_top_pagerank(
    atlas: codeatlas.Atlas, tmp_path: Path
) -> None:
    package = write_package(tmp_path / "repo")
    # many modules import the stdlib's typing: before, each was an edge to mypkg.typing
    for i in range(12):
        (package / f"m{i}.py").write_text(
            "from typing import Any\nimport typing\nfrom . import util\n"
        )
    report = await Indexer(atlas, workers=0, maintain_indexes=False).index(
        package, codebase_id="ranks"
    )
    assert report.module_prefix == "mypkg"
    nodes = (
        await atlas.graph.list({"codebase_id": "ranks", "node_type": ["module", "package"]})
    ).items
    ranked = sorted(nodes, key=lambda n: -float((n.metadata or {})["pagerank"]))
    assert ranked[0].node_id == "mypkg.util"
    edges = {e.edge_id for e in (await atlas.graph.edges.list({"codebase_id": "ranks"})).items}
    into_typing = {e for e in edges if e.startswith("imports:") and e.endswith("->mypkg.typing")}
    assert into_typing == {"imports:mypkg.core->mypkg.typing"}
    util = (await atlas.codebases.list({"codebase_id": "ranks", "path": "util.py"})).items[0]
    assert util.dependent_count == 16  # core, sub, sub.leaf, sub.sibling and m0..m11


async def test_a_small_tree_leaves_its_tables_analysed(
    atlas: codeatlas.Atlas, tmp_path: Path
) -> None:
    # far below autovacuum's threshold (50 rows + 10%): only the indexer's own maintenance
    # gives these tables statistics, which the first searches read
    package = write_package(tmp_path / "repo")

    async def counted(table: str) -> float:
        return float(
            await atlas.executor.fetchval(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)", table
            )
        )

    assert await counted("codebase_metadata") < 0  # never analysed
    report = await Indexer(atlas, workers=0).index(package, codebase_id="small")
    assert await counted("codebase_metadata") == report.files_indexed
    assert await counted("code_locations") == report.rows_written["code_locations"]
    # a later run that changed a few rows of them leaves the table to autovacuum
    files = report.files_indexed
    assert await vacuum(atlas, {"codebase_metadata": 1, "code_files": files}) == ["code_files"]
    assert await vacuum(atlas, {"codebase_metadata": (files + 1) // 2}) == ["codebase_metadata"]


# -- the repository methods the indexer writes through ---------------------------------------


async def test_repository_methods_for_the_indexer(atlas: codeatlas.Atlas, tmp_path: Path) -> None:
    package = write_package(tmp_path / "repo")
    await Indexer(atlas, workers=0, maintain_indexes=False).index(package, codebase_id="repo")

    files = await atlas.code.inventory("repo")
    assert set(files) == set(PACKAGE)
    core = files["core.py"]
    assert core.locations == core.metadata["symbols"] == 1
    assert core.chunks == core.metadata["chunks"] >= 1
    assert await atlas.code.inventory("nobody") == {}

    state = await atlas.codebases.index_state("repo")
    assert state is not None and state["module_prefix"] == "mypkg" and len(state["graph"]) == 64
    await atlas.codebases.set_index_state("repo", {**state, "graph": "stale"})
    assert (await atlas.codebases.index_state("repo") or {})["graph"] == "stale"
    with pytest.raises(codeatlas.errors.NotFoundError):
        await atlas.codebases.set_index_state("nobody", {})
    assert await atlas.codebases.index_state("nobody") is None

    # only rows whose counts differ are touched; unknown paths are ignored
    assert await atlas.codebases.set_dependency_counts("repo", {"util.py": (0, 4)}) == 0
    assert (
        await atlas.codebases.set_dependency_counts(
            "repo", {"util.py": (2, 9), "missing.py": (1, 1)}
        )
        == 1
    )
    util = (await atlas.codebases.list({"codebase_id": "repo", "path": "util.py"})).items[0]
    assert (util.dependency_count, util.dependent_count) == (2, 9)
    with pytest.raises(InvalidInputError, match="non-negative"):
        await atlas.codebases.set_dependency_counts("repo", {"util.py": (-1, 0)})

    # a stale stamp: the next run rebuilds the graph (and so repairs the counts) with no
    # file changed
    report = await Indexer(atlas, workers=0, maintain_indexes=False).index(
        package, codebase_id="repo"
    )
    assert report.graph_rebuilt and report.files_indexed == 0
    util = (await atlas.codebases.list({"codebase_id": "repo", "path": "util.py"})).items[0]
    assert (util.dependency_count, util.dependent_count) == (0, 4)

    for repository in (atlas.codebases, atlas.code, atlas.code.embeddings, atlas.graph):
        await repository.vacuum_analyze()
    with pytest.raises(codeatlas.errors.CodeAtlasError):
        async with atlas.transaction() as tx:
            await tx.code.vacuum_analyze()  # VACUUM cannot run inside a transaction
