"""``codeatlas demo`` and the indexer under it: a small tree indexed end to end, incremental
re-runs, and the CLI (``demo`` and ``index-tree``) at 80 columns."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

import codeatlas
from codeatlas.cli import main
from codeatlas.cli.demo import answer, central_modules
from codeatlas.indexer import Indexer, IndexReport
from codeatlas.models import AnalysisStatus

CID = "demo-test"

FILES = {
    "pkg/__init__.py": '"""A tiny package."""\nfrom .cli import main\n',
    "pkg/cli.py": '''"""Command line entry point."""
import argparse

from . import util


def parse_arguments(argv):
    """Parse command line arguments into options."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_arguments(argv)
    if options.verbose:
        util.log("verbose")
    return 0
''',
    "pkg/util.py": '''"""Small helpers."""


def log(message):
    print(message)


def classify(n):
    """Say whether n is negative, zero, composite or prime."""
    if n < 0:
        return "negative"
    elif n == 0:
        return "zero"
    for i in range(n):
        if i and n % i == 0 and i > 1:
            return "composite"
    return "prime"
''',
    "pkg/archive.py": '''"""Read and write zip archives."""
import zipfile

from .util import log


def write_zip_archive(path, names):
    """Write the files *names* into a new zip archive at *path*."""
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.write(name)
    log(path)


def read_zip_archive(path):
    """Read the member names of the zip archive at *path*."""
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()
''',
    "pkg/broken.py": "def broken(:\n    pass\n",
    "notes.txt": "Release notes.\n\nNothing to see here.\n",
}
# util.classify: 1 + if + elif + for + if + two extra `and` operands
CLASSIFY_COMPLEXITY = 7


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for relative, text in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root.resolve()


async def index(atlas: codeatlas.Atlas, root: Path) -> IndexReport:
    return await Indexer(atlas, workers=1).index(root, codebase_id=CID)


async def test_first_run_fills_every_table(atlas: codeatlas.Atlas, tree: Path) -> None:
    report = await index(atlas, tree)

    assert (report.files_scanned, report.files_indexed, report.files_skipped) == (6, 6, 0)
    assert [n.path for n in report.parse_errors] == ["pkg/broken.py"]
    assert report.module_prefix == ""
    [registry] = (await atlas.codebases.registry.list({"codebase_id": CID})).items
    assert registry.analysis_status == AnalysisStatus.COMPLETED
    assert registry.codebase_path == str(tree)

    rows = {r.path: r for r in (await atlas.codebases.list({"codebase_id": CID})).items}
    assert set(rows) == set(FILES)
    util = rows["pkg/util.py"]
    assert (util.language, util.function_count, util.class_count) == ("python", 2, 0)
    assert util.cyclomatic_complexity == CLASSIFY_COMPLEXITY  # the file's worst function
    classify = next(f for f in util.functions or [] if f["name"] == "classify")
    assert classify["complexity"] == CLASSIFY_COMPLEXITY
    assert util.halstead_volume > 0 and 0 < util.maintainability_index <= 100
    assert util.total_lines == util.code_lines + util.comment_lines + util.blank_lines
    assert util.last_modified == int((tree / "pkg/util.py").stat().st_mtime)
    assert rows["notes.txt"].language == "text"
    assert rows["pkg/broken.py"].function_count == 0
    cli = rows["pkg/cli.py"]
    assert {i["target"] for i in cli.imports or []} >= {"argparse", "pkg.util"}
    # in-tree imports only: cli -> util; util <- cli, archive
    assert (cli.dependency_count, util.dependent_count) == (1, 2)
    assert all(r.pagerank_score > 0 for p, r in rows.items() if p.endswith(".py"))
    assert rows["notes.txt"].pagerank_score == 0

    assert await atlas.code.count({"project_name": CID}) == 6
    symbols = await atlas.code.locations.symbols(CID, file_path="pkg/archive.py")
    assert [s.symbol_name for s in symbols] == ["write_zip_archive", "read_zip_archive"]
    assert await atlas.code.locations.count({"project": CID}) == 6
    assert report.rows_written["code_embeddings"] == report.rows_stored["code_embeddings"] > 6

    edges = {e.edge_id: e for e in (await atlas.graph.edges.list({"codebase_id": CID})).items}
    assert "imports:pkg.cli->pkg.util" in edges
    assert edges["imports:pkg.cli->pkg.util"].metadata == {"graph_type": "ImportGraph"}
    assert "calls:pkg.cli:main->pkg.util:log" in edges
    assert "calls:pkg.archive:write_zip_archive->pkg.util:log" in edges
    node = (
        await atlas.graph.list({"codebase_id": CID, "node_id": "pkg.util"}, include_vectors=True)
    ).items[0]
    assert node.metadata is not None and node.metadata["pagerank"] > 0
    assert node.vector_embedding is not None
    assert (await central_modules(atlas, CID, 3))[0].module == "pkg.util"  # imported twice

    snapshot = await atlas.snapshots.latest(CID)
    assert snapshot is not None and snapshot.snapshot_id == report.snapshot_id == 1
    assert "python" in (snapshot.detected_technologies or [])
    assert snapshot.summary is not None and snapshot.summary["files"] == 6

    found = await answer(atlas, CID, "read and write zip archives")
    assert found.files[0][0] == "pkg/archive.py"
    assert found.functions[0][0] in {"write_zip_archive", "read_zip_archive"}
    assert found.functions[0][1].startswith("pkg/archive.py:")
    assert found.files_ms > 0 and found.functions_ms > 0
    assert set(report.seconds) >= {"scan", "parse", "write", "graph", "maintenance"}


async def test_second_run_is_incremental(atlas: codeatlas.Atlas, tree: Path) -> None:
    first = await index(atlas, tree)
    second = await index(atlas, tree)
    assert (second.files_indexed, second.files_unchanged, second.files_removed) == (0, 6, 0)
    assert not second.graph_rebuilt
    assert second.rows_written.get("codebase_metadata", 0) == 0
    assert second.rows_stored == {**first.rows_stored, "codebase_snapshots": 2}

    # one file edited (a new function), one deleted, one rewritten with the same size and
    # mtime (only its content hash tells)
    util = tree / "pkg/util.py"
    util.write_text(FILES["pkg/util.py"] + "\n\ndef shout(message):\n    log(message.upper())\n")
    (tree / "pkg/archive.py").unlink()
    notes = tree / "notes.txt"
    stat = notes.stat()
    notes.write_text(FILES["notes.txt"].replace("Nothing", "Plenty!"))
    os.utime(notes, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    third = await index(atlas, tree)
    assert (third.files_indexed, third.files_unchanged, third.files_removed) == (2, 3, 1)
    assert third.graph_rebuilt
    paths = {r.path for r in (await atlas.codebases.list({"codebase_id": CID})).items}
    assert paths == set(FILES) - {"pkg/archive.py"}
    assert await atlas.code.count({"project_name": CID}) == 5
    assert await atlas.code.locations.count({"project": CID, "file_path": "pkg/archive.py"}) == 0
    assert [s.symbol_name for s in await atlas.code.locations.symbols(CID, name="shout")] == [
        "shout"
    ]
    edges = {e.edge_id for e in (await atlas.graph.edges.list({"codebase_id": CID})).items}
    assert "calls:pkg.util:shout->pkg.util:log" in edges
    assert not any("pkg.archive" in edge for edge in edges)
    assert "calls:pkg.cli:main->pkg.util:log" in edges  # unchanged file's edges kept
    assert not await atlas.graph.exists({"codebase_id": CID, "node_id": "pkg.archive"})
    util_row = (await atlas.codebases.list({"codebase_id": CID, "path": "pkg/util.py"})).items[0]
    assert util_row.function_count == 3
    assert util_row.dependent_count == 1  # archive.py, which imported it, is gone
    files = {f.file_path: f for f in (await atlas.code.list({"project_name": CID})).items}
    assert files["notes.txt"].content is not None and "Plenty!" in files["notes.txt"].content
    # chunks of re-indexed files were replaced, not added to
    chunks = await atlas.code.chunks_of(files["pkg/util.py"].id)
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))


async def test_cli_demo(migrated_dsn: str, tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["demo", str(tree), "--dsn", migrated_dsn, "--query", "classify prime numbers"]
    # main() runs its own event loop: give it a thread of its own
    code = await asyncio.to_thread(main, [*argv, "--codebase-id", "cli", "--workers", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "classify prime numbers" in out
    assert "classify" in out.split("classify prime numbers", 1)[1]
    assert "6 scanned, 6 indexed" in out
    assert "most central modules" in out
    assert "data: in the database at" in out  # where the data lives (not embedded here)
    # 80 columns: the width pytest's capture gives rich when no terminal is attached
    assert max(map(len, out.splitlines())) <= 80
    assert "pkg/util.py:" in out  # functions keep their line numbers

    code = await asyncio.to_thread(main, ["demo", str(tree / "missing"), "--dsn", migrated_dsn])
    captured = capsys.readouterr()
    assert code == 1
    # one message (rich may wrap it at the terminal width)
    assert captured.err.split() == ["error:", "not", "a", "directory:", str(tree / "missing")]


async def test_cli_index_tree(
    migrated_dsn: str, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "pkg" / "blob.py").write_bytes(b"\x00\x01binary")
    argv = ["index-tree", str(tree), "--dsn", migrated_dsn, "--workers", "0"]
    code = await asyncio.to_thread(main, argv)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "7 scanned, 6 indexed, 0 unchanged, 1 skipped" in out
    assert "pkg/blob.py" in out and "binary content" in out
    assert max(map(len, out.splitlines())) <= 80
    code = await asyncio.to_thread(main, argv)
    assert code == 0
    assert "7 scanned, 0 indexed, 6 unchanged, 1 skipped" in capsys.readouterr().out


def test_cli_does_not_load_the_indexer_for_other_commands() -> None:
    import subprocess

    probe = (
        "import sys\n"
        "from codeatlas.cli import _parser\n"
        "_parser().parse_args(['migrate'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('codeatlas.indexer', "
        "'codeatlas.analysis'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
