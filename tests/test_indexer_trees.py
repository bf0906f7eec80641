"""The indexer on real third-party trees (pip, setuptools: vendored code) and killed runs.

The trees are copies of what this environment has installed: pip and setuptools from the
running interpreter's site-packages, and the pip wheel the standard library bundles for
``ensurepip`` (what ``python -m venv`` installs; its vendored chardet has a docstring with
NUL characters on Python 3.11).
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import os
import shutil
import signal
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

import codeatlas
from codeatlas.indexer import Indexer, IndexReport
from codeatlas.indexer.query import search

pytestmark = pytest.mark.slow


def installed(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_pip(into: Path) -> Path:
    """Extract the pip wheel ensurepip bundles (part of the standard library) into *into*."""
    import ensurepip

    bundled = Path(ensurepip.__file__).parent / "_bundled"
    [wheel] = sorted(bundled.glob("pip-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into)
    return into / "pip"


def copy_tree(source: Path, into: Path) -> Path:
    target = into / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"), symlinks=True)
    return target


def unstorable_python(root: Path) -> set[str]:
    """Return the .py files with a function or class docstring PostgreSQL cannot hold as
    it is (NUL or a lone surrogate): the oracle for ``report.sanitised``."""
    found: set[str] = set()
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for path in root.rglob("*.py"):
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            doc = ast.get_docstring(node) if isinstance(node, definitions) else None
            if doc and any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in doc):
                found.add(path.relative_to(root).as_posix())
    return found


def check(report: IndexReport, root: Path) -> None:
    assert report.files_scanned == (
        report.files_indexed + report.files_unchanged + report.files_skipped
    )
    assert report.files_indexed > 100
    assert all(s.reason for s in report.skipped)
    assert report.rows_stored["code_files"] == report.files_indexed
    assert report.rows_stored["codebase_metadata"] == report.files_indexed
    # the root is a package itself (pip._vendor for the bundled wheel's vendored code)
    assert report.module_prefix.rsplit(".", 1)[-1] == root.name


async def test_real_trees_with_vendored_code(atlas: codeatlas.Atlas, tmp_path: Path) -> None:
    bundled = bundled_pip(tmp_path / "bundled")
    trees = {
        "pip": copy_tree(installed("pip"), tmp_path / "installed"),
        "setuptools": copy_tree(installed("setuptools"), tmp_path / "installed"),
        # of the bundled pip only its vendored chardet (where the NUL docstring is), if any:
        # the whole of pip is indexed above already
        "pip-bundled-vendor": bundled / "_vendor",
    }
    assert (trees["pip"] / "_vendor").is_dir() and (trees["setuptools"] / "_vendor").is_dir()
    indexer = Indexer(atlas, workers=2, maintain_indexes=False)
    for codebase_id, root in trees.items():
        report = await indexer.index(root, codebase_id=codebase_id)
        check(report, root)
        sanitised = {n.path for n in report.sanitised}
        # every file whose strings PostgreSQL cannot hold was stored and named
        assert unstorable_python(root) <= sanitised
        assert all(n.note for n in report.sanitised)
        if (root / "chardet/utf1632prober.py").exists():
            assert "chardet/utf1632prober.py" in sanitised
            rows = await atlas.code.locations.symbols(
                codebase_id, file_path="chardet/utf1632prober.py", name="UTF1632Prober"
            )
            assert rows and "\ufffd" in (rows[0].documentation or "")
        # the package's own absolute imports resolve inside the tree
        edges = await atlas.graph.edges.count({"codebase_id": codebase_id, "edge_type": "imports"})
        assert edges > 50
        again = await indexer.index(root, codebase_id=codebase_id)
        assert (again.files_indexed, again.files_unchanged) == (0, report.files_indexed)
        assert not again.graph_rebuilt
    # a question on pip's source: every function found (by its name, its code or its
    # class's code) is named at the line it starts on
    found = await search(atlas, "where are HTTP retries handled", "pip", k=10)
    assert len(found.files) == 10 and len(found.functions) == 10
    for hit in found.functions:
        line = (trees["pip"] / hit.path).read_text().splitlines()[hit.line - 1].lstrip()
        assert line.startswith(("def ", "async def ", "@")), (hit, line)
        assert hit.name.rsplit(".", 1)[-1] in line or line.startswith("@"), (hit, line)


# -- killed runs converge ----------------------------------------------------------------------

RUNNER = textwrap.dedent(
    """\
    import asyncio, sys
    import codeatlas
    from codeatlas.indexer import Indexer

    async def main(dsn, root, codebase_id):
        def progress(p):
            print(p.stage, p.done, p.detail, flush=True)

        async with codeatlas.connect(dsn, migrate=False) as atlas:
            indexer = Indexer(atlas, workers=0, batch_files=4, on_progress=progress)
            await indexer.index(root, codebase_id=codebase_id)
        print("finished", flush=True)

    asyncio.run(main(*sys.argv[1:]))
    """
)


def synthetic_tree(root: Path, modules: int) -> Path:
    """Write a package of *modules* modules importing and calling each other."""
    package = root / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A generated package."""\n')
    for i in range(modules):
        imports = "".join(f"from . import m{j}\n" for j in range(max(0, i - 3), i))
        calls = "".join(f"    m{j}.f{j}(x)\n" for j in range(max(0, i - 3), i))
        (package / f"m{i}.py").write_text(
            f'"""Module {i}."""\n{imports}\n\ndef f{i}(x):\n    """Step {i}."""\n{calls}'
            f"    return x + {i}\n\n\nclass C{i}:\n    def method(self):\n        return f{i}(1)\n"
        )
    return root


async def snapshot_rows(atlas: codeatlas.Atlas, codebase_id: str) -> dict[str, Any]:
    """Return what a codebase holds, table by table, in a form two codebases compare by."""
    metadata = (await atlas.codebases.list({"codebase_id": codebase_id}, limit=10_000)).items
    files = await atlas.code.inventory(codebase_id)
    nodes = (await atlas.graph.list({"codebase_id": codebase_id}, limit=10_000)).items
    edges = (await atlas.graph.edges.list({"codebase_id": codebase_id}, limit=10_000)).items
    return {
        "codebase_metadata": sorted(
            (m.path, m.size, m.function_count, m.dependency_count, m.dependent_count)
            for m in metadata
        ),
        "pagerank": sorted((m.path, round(m.pagerank_score, 9)) for m in metadata),
        "code_files": sorted((p, f.hash, f.chunks, f.locations) for p, f in files.items()),
        "code_locations": await atlas.code.locations.count({"project": codebase_id}),
        "graph_nodes": sorted((n.node_id, n.file_path, n.line_number) for n in nodes),
        "graph_edges": sorted((e.edge_id, e.weight) for e in edges),
    }


async def run_until(dsn: str, root: Path, codebase_id: str, kill_after: str | None) -> bool:
    """Run the indexer in a subprocess; SIGKILL it once it prints *kill_after*.

    Returns whether it was killed (False: it finished first).
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUNNER,
        dsn,
        str(root),
        codebase_id,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    killed = False
    async for raw in process.stdout:
        line = raw.decode().strip()
        if kill_after is not None and line.startswith(kill_after):
            process.send_signal(signal.SIGKILL)
            killed = True
            break
    await process.wait()
    return killed


@pytest.mark.timeout(180)
async def test_killed_runs_converge_to_a_clean_runs_rows(
    atlas: codeatlas.Atlas, migrated_dsn: str, tmp_path: Path
) -> None:
    root = synthetic_tree(tmp_path / "tree", 60)
    await Indexer(atlas, workers=0).index(root, codebase_id="clean")
    clean = await snapshot_rows(atlas, "clean")
    assert len(clean["code_files"]) == 61 and clean["graph_edges"]

    # killed while writing file batches (twice), while writing the graph, before the
    # snapshot, during maintenance
    kills = ["write 8 files", "write 40 files", "graph 0 write", "snapshot 0", "maintenance 0"]
    for point in kills:
        assert await run_until(migrated_dsn, root, "killed", point), point
        # whatever committed is whole: a stamp only with its file's rows, each file with
        # all its chunks and symbols
        stamps = await atlas.codebases.file_stamps("killed")
        files = await atlas.code.inventory("killed")
        assert set(stamps) == set(files), point
        if point == kills[0]:
            assert 0 < len(files) < 61  # killed with some batches committed, not all
        for path, f in files.items():
            assert (f.chunks, f.locations) == (f.metadata["chunks"], f.metadata["symbols"]), path
    assert not await run_until(migrated_dsn, root, "killed", None)
    assert await snapshot_rows(atlas, "killed") == clean

    # an edit after a kill during the graph write: the next run rebuilds the graph
    (root / "pkg" / "m5.py").write_text('"""Rewritten."""\nfrom . import m1\n')
    await Indexer(atlas, workers=0).index(root, codebase_id="clean")
    assert await run_until(migrated_dsn, root, "killed", "graph 0 write")
    report = await Indexer(atlas, workers=0).index(root, codebase_id="killed")
    assert report.graph_rebuilt and report.files_indexed == 0
    assert await snapshot_rows(atlas, "killed") == await snapshot_rows(atlas, "clean")
