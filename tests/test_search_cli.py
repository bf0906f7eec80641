"""``codeatlas search`` and the library under it (``codeatlas.indexer.query``) on a real
indexed tree, and the indexer re-embedding files when the embedder changes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import codeatlas
from codeatlas.cli import main
from codeatlas.embedders import HashingEmbedder
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


SHOP = {
    "shop/__init__.py": '"""A shop."""\n',
    "shop/payments.py": '''"""Charge a customer's credit card at the payment gateway."""


class Gateway:
    """The payment gateway's client: charges and refunds of credit cards."""

    def submit(self, card, amount):
        """Submit *amount* against *card*."""
        return (card, amount)

    def refund(self, charge_id):
        """Give the money of *charge_id* back."""
        return charge_id
''',
    # a decoy: a function named like the question, in a file about something else
    "shop/labels.py": '''"""Labels printed on parcels."""


def credit_card_label(text):
    """Return *text* framed as a label."""
    return f"[{text}]"


def parcel_label(text):
    """Return *text* as a parcel label."""
    return text
''',
    "shop/stock.py": '''"""Stock levels of the warehouse."""


def count_items(rows):
    """Count the items in *rows*."""
    return len(rows)
''',
}


async def test_hybrid_functions_rank_under_the_files_found(
    atlas: codeatlas.Atlas, tmp_path: Path
) -> None:
    root = tmp_path / "shop-tree"
    for relative, text in SHOP.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    await Indexer(atlas, workers=0).index(root, codebase_id="shop")
    question = "charge a customer's credit card"
    # the functions' own hybrid ranking alone puts the decoy first (its name matches) ...
    vector = (await HashingEmbedder(768).embed([question]))[0]
    own = await atlas.code.locations.search_hybrid(
        question, vector, 4, where={"project": "shop", "symbol_type": ["function", "method"]}
    )
    assert own[0].item.symbol_name == "credit_card_label"
    # ... search ranks the files first, and a function of the best file above it
    result = await search(atlas, question, "shop", k=2)
    assert result.files[0].path == "shop/payments.py"
    assert result.functions[0].path == "shop/payments.py"
    assert result.functions[0].name in {"Gateway.submit", "Gateway.refund"}
    assert len(result.functions) == 2
    found = {f.path for f in result.files}
    listed = [f.path in found for f in result.functions]
    assert listed == sorted(listed, reverse=True)  # functions of the files found come first
    scores = [f.score for f in result.functions]
    assert scores == sorted(scores, reverse=True)
    # a file scores the RRF of four rankings: its own vector and lexical ranks, and those of
    # its best chunk (weight 0.5), each ranking ordering files by their best row in it
    large = (await HashingEmbedder(1536).embed([question]))[0]
    own_files = await atlas.codebases.search_hybrid(
        question, large, 160, where={"codebase_id": "shop"}, candidates=80
    )
    ids = {f.id: f.file_path for f in (await atlas.code.list({"project_name": "shop"})).items}
    chunks = await atlas.code.embeddings.search_hybrid(
        question, vector, 200, where={"code_file_id": list(ids)}, candidates=100
    )
    expected: dict[str, float] = {}
    for weight, pairs in (
        (1.0, [(m.item.path, m.vector_rank) for m in own_files]),
        (1.0, [(m.item.path, m.text_rank) for m in own_files]),
        (0.5, [(ids[c.item.code_file_id], c.vector_rank) for c in chunks]),
        (0.5, [(ids[c.item.code_file_id], c.text_rank) for c in chunks]),
    ):
        best: dict[str, int] = {}
        for path, rank in pairs:
            if rank is not None:
                best[path] = min(rank, best.get(path, rank))
        for position, path in enumerate(sorted(best, key=best.__getitem__), 1):
            expected[path] = expected.get(path, 0.0) + weight / (60 + position)
    assert len(expected) == 4  # every file is in some ranking
    every = await search(atlas, question, "shop", k=4)
    assert [(f.path, pytest.approx(f.score)) for f in every.files] == sorted(
        expected.items(), key=lambda item: (-item[1], item[0])
    )
    # more functions than the files found hold: the others follow, by their own rank
    wide = await search(atlas, question, "shop", k=6)
    in_found = [f.path in {h.path for h in wide.files} for f in wide.functions]
    assert in_found == sorted(in_found, reverse=True)
    # a function scores the RRF of its own hybrid rank, the vector and lexical ranks of the
    # chunk holding its code (weight 0.5: a top-level function's own; Gateway is short, so
    # its methods' is the class's) and its file's rank among the files found (weight 10)
    functions = await atlas.code.locations.search_hybrid(
        question,
        vector,
        100,
        where={"project": "shop", "symbol_type": ["function", "method"]},
        candidates=50,
    )
    scores_of: dict[tuple[str, str], float] = {}
    lines: dict[tuple[str, str], int] = {}
    for rank, m in enumerate(functions, 1):
        key = (m.item.file_path, str((m.item.metadata or {}).get("qualname")))
        scores_of[key] = 1 / (60 + rank)
        lines[key] = m.item.line_start
    assert len(scores_of) == 5
    held: dict[tuple[str, str], list[Any]] = {}
    for c in chunks:
        metadata = c.item.metadata or {}
        chunk_path = ids[c.item.code_file_id]
        for key, line in lines.items():
            if (
                key[0] == chunk_path
                and metadata.get("kind") in ("function", "class")
                and metadata["start_line"] <= line <= metadata["end_line"]
            ):
                held.setdefault(key, []).append(c)
    assert {key[1] for key in held} == {
        "credit_card_label",
        "parcel_label",
        "count_items",
        "Gateway.submit",
        "Gateway.refund",
    }
    assert {c.item.metadata["kind"] for c in held["shop/payments.py", "Gateway.submit"]} == {
        "class"
    }
    for column in ("vector_rank", "text_rank"):
        best_of: dict[tuple[str, str], int] = {}
        for key, held_chunks in held.items():
            for c in held_chunks:
                rank = getattr(c, column)
                if rank is not None:
                    best_of[key] = min(rank, best_of.get(key, rank))
        for position, key in enumerate(sorted(best_of, key=lambda key: (best_of[key], key)), 1):
            scores_of[key] += 0.5 / (60 + position)
    for position, hit in enumerate(wide.files, 1):
        for key in scores_of:
            if key[0] == hit.path:
                scores_of[key] += 10 / (60 + position)
    assert [((f.path, f.name), f.line, pytest.approx(f.score)) for f in wide.functions] == [
        (key, lines[key], value)
        for key, value in sorted(scores_of.items(), key=lambda item: (-item[1], item[0]))
    ]
    # vector and text modes are the single rankings, without the file prior
    text = await search(atlas, question, "shop", k=2, mode="text")
    assert text.functions[0].name == "credit_card_label"
    for k in (0, 101, True):
        with pytest.raises(InvalidInputError, match="k must be"):
            await search(atlas, question, "shop", k=k)


async def test_a_function_found_by_a_later_piece_of_its_code_starts_at_its_def(
    atlas: codeatlas.Atlas, tmp_path: Path
) -> None:
    from codeatlas.indexer.query import _hybrid_functions, _is_body

    body = "".join(f"    value_{n} = {n}\n" for n in range(400))
    root = tmp_path / "long-tree"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "long.py").write_text(
        '"""A module."""\n\n\ndef long_function():\n' + body + "    zebraquux = 1\n"
    )
    await Indexer(atlas, workers=0).index(root, codebase_id="long")
    vector = (await HashingEmbedder(768).embed(["zebraquux"]))[0]
    ids = {f.id: f.file_path for f in (await atlas.code.list({"project_name": "long"})).items}
    chunks = await atlas.code.embeddings.search_hybrid(
        "zebraquux", vector, 20, where={"code_file_id": list(ids)}
    )
    bodies = [(ids[c.item.code_file_id], c) for c in chunks if _is_body(c)]
    later = [c for _, c in bodies if c.text_rank is not None]
    # the word is in the function's second piece, which starts inside the function
    assert [(c.item.metadata["name"], c.item.metadata["part"]) for c in later] == [
        ("long_function", 2)
    ]
    assert later[0].item.metadata["start_line"] > 4
    # no own ranking holds it (only classes are asked for): its line is the symbol row's
    found = await _hybrid_functions(
        atlas, "zebraquux", {"project": "long", "symbol_type": ["class"]}, 5, vector, [], bodies
    )
    assert [(f.path, f.name, f.line) for f in found] == [("pkg/long.py", "long_function", 4)]
