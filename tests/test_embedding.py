"""HashingEmbedder: shape, unit norm, determinism across processes, and useful similarity."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codeatlas.embedders import Embedder, HashingEmbedder, tokenize
from codeatlas.errors import InvalidInputError

ARGPARSE_CODE = """
import argparse

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Process some files.")
    parser.add_argument("--verbose", action="store_true", help="print more")
    parser.add_argument("paths", nargs="+")
    return parser

args = build_parser().parse_args(sys.argv[1:])
"""

SOCKET_CODE = """
import socket

def send_all(host: str, port: int, payload: bytes) -> None:
    with socket.create_connection((host, port), timeout=5.0) as conn:
        conn.sendall(payload)
        reply = conn.recv(4096)
"""

SAMPLE = "def parseArgs(argv):\n    return HTTPServer(argv)  # start the http server\n"


def test_tokenize_splits_identifiers() -> None:
    tokens = tokenize("def parseArgs(argv): HTTPServer parse_args sha256 x")
    assert tokens == [
        "parse", "args", "parse_args", "argv",
        "http", "server", "http_server",
        "parse", "args", "parse_args",
        "sha", "256", "sha_256",
    ]  # fmt: skip
    assert tokenize("self.x = a or b") == []


def test_is_an_embedder() -> None:
    assert isinstance(HashingEmbedder(), Embedder)


@pytest.mark.parametrize("dimensions", [768, 1536])
async def test_shape_dtype_and_unit_norm(dimensions: int) -> None:
    embedder = HashingEmbedder(dimensions)
    vectors = await embedder.embed([SAMPLE, ARGPARSE_CODE, "word"])
    assert vectors.shape == (3, dimensions)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("dimensions", [0, 100, 767, 1024])
def test_rejects_other_dimensions(dimensions: int) -> None:
    with pytest.raises(InvalidInputError):
        HashingEmbedder(dimensions)


async def test_rejects_a_bare_string_and_non_str_items() -> None:
    embedder = HashingEmbedder()
    with pytest.raises(InvalidInputError):
        await embedder.embed("not a list")
    with pytest.raises(InvalidInputError):
        await embedder.embed([b"bytes"])  # type: ignore[list-item]


async def test_empty_batch() -> None:
    assert (await HashingEmbedder().embed([])).shape == (0, 768)


async def test_never_the_zero_vector() -> None:
    vectors = await HashingEmbedder().embed(["", "   \n\t", "!!! ??? ...", "a b c", "x"])
    assert np.all(np.linalg.norm(vectors, axis=1) > 0.99)
    # Texts without tokens share one fixed vector.
    assert np.array_equal(vectors[0], vectors[2])


async def test_deterministic_within_a_process_and_independent_of_the_batch() -> None:
    texts = [SAMPLE, ARGPARSE_CODE, SOCKET_CODE]
    first = await HashingEmbedder().embed(texts)
    warm = HashingEmbedder()
    await warm.embed(["unrelated warm-up text with many tokens", SOCKET_CODE])
    again = await warm.embed(texts)
    alone = await HashingEmbedder().embed([ARGPARSE_CODE])
    assert np.array_equal(first, again)
    assert np.array_equal(first[1], alone[0])


def test_identical_vectors_in_another_process() -> None:
    # A fresh interpreter with a different hash seed must produce the same bytes.
    script = (
        "import asyncio, sys\n"
        "from codeatlas.embedders import HashingEmbedder\n"
        "texts = [sys.argv[1], sys.argv[2]]\n"
        "vectors = asyncio.run(HashingEmbedder(1536).embed(texts))\n"
        "sys.stdout.write(vectors.tobytes().hex())\n"
    )
    local = HashingEmbedder(1536).embed_sync([SAMPLE, ARGPARSE_CODE])
    for seed in ("1", "12345"):
        result = subprocess.run(
            [sys.executable, "-c", script, SAMPLE, ARGPARSE_CODE],
            capture_output=True,
            check=True,
            text=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            timeout=60,
        )
        assert bytes.fromhex(result.stdout) == local.tobytes()


async def test_related_texts_are_closer_than_unrelated() -> None:
    query, argparse_code, socket_code = await HashingEmbedder().embed(
        ["parse command line arguments", ARGPARSE_CODE, SOCKET_CODE]
    )
    assert float(query @ argparse_code) > float(query @ socket_code) + 0.1
    network, _, socket_again = await HashingEmbedder().embed(
        ["send bytes over a network socket connection", ARGPARSE_CODE, SOCKET_CODE]
    )
    assert float(network @ socket_again) > float(network @ argparse_code) + 0.1


async def test_identifier_styles_meet() -> None:
    snake, camel, other = await HashingEmbedder().embed(
        ["read_config_file(path)", "readConfigFile(path)", "draw_circle(radius)"]
    )
    assert float(snake @ camel) > 0.9
    assert float(snake @ other) < 0.3


async def test_large_batch_runs_in_a_worker_thread() -> None:
    texts = [f"{ARGPARSE_CODE}\n# variant {i}\nvalue_{i} = compute_{i % 7}()" for i in range(400)]
    vectors = await HashingEmbedder().embed(texts)
    assert vectors.shape == (400, 768)
    np.testing.assert_array_equal(vectors, HashingEmbedder().embed_sync(texts))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=6))
def test_any_text_gives_unit_rows(texts: list[str]) -> None:
    vectors = HashingEmbedder().embed_sync(texts)
    assert vectors.shape == (len(texts), 768)
    assert np.all(np.isfinite(vectors))
    if texts:
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
