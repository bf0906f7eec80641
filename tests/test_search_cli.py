"""``codeatlas search`` and the library under it (``codeatlas.indexer.query``) on a real
indexed tree, and the indexer re-embedding files when the embedder changes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import codeatlas
from codeatlas.cli import main
from codeatlas.embedders.local import WordLlamaEmbedder
from codeatlas.errors import InvalidInputError, NotFoundError
from codeatlas.indexer import Indexer
from codeatlas.indexer.query import embedder_name_of, latest_codebase, search

FILES = {
    "pkg/__init__.py": '"""A tiny package."""\n',
    "pkg/archive.py": '''"""Read and write zip archives."""
import zipfile


def write_zip_archive(path, names):
    """Write the files *names* into a new zip archive at *path*."""
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.write(name)


def read_zip_archive(path):
    """Read the member names of the zip archive at *path*."""
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()
''',
    "pkg/mail.py": '''"""Send email messages over SMTP."""
import smtplib


class Mailer:
    def send_message(self, host, message):
        """Send *message* through the SMTP server at *host*."""
        with smtplib.SMTP(host) as server:
            server.send_message(message)
''',
    "pkg/cli/options.py": '''"""Command line options."""
import argparse


def parse_arguments(argv):
    """Parse command line arguments into options."""
    return argparse.ArgumentParser().parse_args(argv)
''',
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for relative, text in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root.resolve()


async def test_search_json_shape_and_modes(
    migrated_dsn: str, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = ["index-tree", str(tree), "--dsn", migrated_dsn, "--workers", "0"]
    assert await asyncio.to_thread(main, [*index, "--codebase-id", "search-cli"]) == 0
    capsys.readouterr()
    base = ["search", "--dsn", migrated_dsn, "--json"]
    # the codebase of --path, hybrid by default
    argv = [*base, "send an email over smtp", "--path", str(tree), "--k", "3"]
    assert await asyncio.to_thread(main, argv) == 0
    printed = capsys.readouterr().out
    document = json.loads(printed)  # exactly one JSON object, nothing else
    assert printed.count("\n") == 1
    assert list(document) == ["query", "codebase_id", "files", "functions"]
    assert document["query"] == "send an email over smtp"
    assert document["codebase_id"] == "search-cli"
    assert 1 <= len(document["files"]) <= 3 and 1 <= len(document["functions"]) <= 3
    for item in document["files"]:
        assert list(item) == ["path", "score"]
        assert isinstance(item["path"], str) and isinstance(item["score"], float)
    for item in document["functions"]:
        assert list(item) == ["path", "name", "line", "score"]
        assert isinstance(item["line"], int) and isinstance(item["score"], float)
    assert document["files"][0]["path"] == "pkg/mail.py"
    assert document["functions"][0] == {
        "path": "pkg/mail.py",
        "name": "Mailer.send_message",
        "line": 6,
        "score": document["functions"][0]["score"],
    }
    scores = [f["score"] for f in document["files"]]
    assert scores == sorted(scores, reverse=True)
    # paths relative to the root, "/"-separated, in every mode
    for mode in ("vector", "text"):
        argv = [*base, "parse command line arguments", "--codebase", "search-cli"]
        assert await asyncio.to_thread(main, [*argv, "--mode", mode]) == 0
        found = json.loads(capsys.readouterr().out)
        assert found["files"][0]["path"] == "pkg/cli/options.py", mode
        assert found["functions"][0]["name"] == "parse_arguments", mode
    # the table view, and an unknown codebase is one error line
    argv = ["search", "--dsn", migrated_dsn, "read a zip archive", "--codebase", "search-cli"]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert "pkg/archive.py" in out and "read_zip_archive" in out
    argv = [*base, "x", "--codebase", "no-such-codebase"]
    assert await asyncio.to_thread(main, argv) == 1
    assert "no indexed files" in capsys.readouterr().err


async def test_library_search_and_the_recorded_embedder(atlas: codeatlas.Atlas, tree: Path) -> None:
    with pytest.raises(NotFoundError):
        await latest_codebase(atlas)
    first = await Indexer(atlas, workers=0).index(tree, codebase_id="q")
    assert first.files_indexed == 4
    assert await latest_codebase(atlas) == "q"
    assert await latest_codebase(atlas, tree) == "q"
    assert await embedder_name_of(atlas, "q") == "hashing"
    code_file = (await atlas.code.list({"project_name": "q"})).items[0]
    stamp = {"name": "hashing", "version": "1", "dimensions": 768}
    assert code_file.metadata["embedder"] == stamp
    assert code_file.metadata["file_embedder"] == stamp | {"dimensions": 1536}
    chunks = await atlas.code.chunks_of(code_file.id)
    assert chunks and all(c.metadata["embedder"] == stamp for c in chunks)
    location = (await atlas.code.locations.list({"project": "q"})).items[0]
    assert location.metadata is not None and location.metadata["embedder"]["name"] == "hashing"

    # the same files, now with the local model: every file is re-embedded, then unchanged
    local = Indexer(
        atlas, workers=0, embedder=WordLlamaEmbedder(768), file_embedder=WordLlamaEmbedder(1536)
    )
    second = await local.index(tree, codebase_id="q")
    assert (second.files_indexed, second.files_unchanged) == (4, 0)
    third = await local.index(tree, codebase_id="q")
    assert (third.files_indexed, third.files_unchanged) == (0, 4)
    assert await embedder_name_of(atlas, "q") == "local"
    files = await atlas.code.list({"project_name": "q"})
    assert {f.metadata["embedder"]["name"] for f in files.items} == {"wordllama-l2_supercat-256"}

    result = await search(atlas, "read and write zip archives", "q", k=2)
    assert result.embedder == "local" and result.mode == "hybrid"
    assert result.files[0].path == "pkg/archive.py"
    assert len(result.files) == 2 and len(result.functions) == 2
    text = await search(atlas, "zip archive", "q", mode="text")
    assert text.files[0].path == "pkg/archive.py" and text.embedder == "none"
    with pytest.raises(InvalidInputError, match="mode"):
        await search(atlas, "x", "q", mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="query"):
        await search(atlas, "  ", "q")
