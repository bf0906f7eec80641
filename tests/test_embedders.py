"""The real embedders: the local WordLlama model from its wheel, and an OpenAI-compatible
HTTP API served by a real server on 127.0.0.1 (429, 500, a slow answer, a malformed body)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from codeatlas.embedders import embedder, embedder_stamp
from codeatlas.embedders.local import MODEL_DIMENSIONS, WordLlamaEmbedder
from codeatlas.embedders.openai_api import OpenAIEmbedder
from codeatlas.errors import EmbedderError, InvalidInputError

KEY = "sk-test-SECRET-4242"


async def test_local_model_loads_offline_from_its_wheel() -> None:
    # no network: a download attempt would need huggingface_hub, which this never imports
    code = (
        "import asyncio, sys\n"
        "from codeatlas.embedders.local import WordLlamaEmbedder\n"
        "v = asyncio.run(WordLlamaEmbedder(768).embed(['parse command line arguments']))\n"
        "print(v.shape, 'wordllama' in sys.modules, 'huggingface_hub' in sys.modules)\n"
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HF_HUB_OFFLINE": "1", "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["(1,", "768)", "False", "False"]


@pytest.mark.parametrize("dimensions", [768, 1536])
async def test_local_vectors_are_unit_and_zero_padded(dimensions: int) -> None:
    model = WordLlamaEmbedder(dimensions)
    texts = [
        "parse command line arguments",
        "argparse: a parser for command-line options and arguments",
        "send an email message over SMTP",
        "",
    ]
    vectors = await model.embed(texts)
    assert vectors.shape == (4, dimensions) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not vectors[:3, MODEL_DIMENSIONS:].any()  # padding leaves cosine unchanged
    # related texts are closer than unrelated ones
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    # a text without tokens: storable, orthogonal to every real text
    assert vectors[3, MODEL_DIMENSIONS] == 1.0 and abs(float(vectors[3] @ vectors[0])) < 1e-6
    # a large batch runs in a thread and gives the same rows
    many = await model.embed(texts * 2000)
    assert np.allclose(many[:4], vectors, atol=1e-6)


def test_stamps_name_the_embedder() -> None:
    assert embedder_stamp(embedder("hashing", 768)) == {
        "name": "hashing",
        "version": "1",
        "dimensions": 768,
    }
    local = embedder_stamp(embedder("local", 1536))
    assert local["name"] == "wordllama-l2_supercat-256" and local["dimensions"] == 1536
    assert local["version"].startswith("0.4")
    with pytest.raises(InvalidInputError, match="embedder must be one of"):
        embedder("bert", 768)


# -- the HTTP API ---------------------------------------------------------------------------


@dataclass
class Api:
    """A tiny OpenAI-compatible server: answers each request by the next scripted action."""

    script: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    width: int = 768
    url: str = ""

    def vectors(self, texts: list[str]) -> list[list[float]]:
        # deterministic: text i gets a vector with len(text) + 1 at position i % width
        rows = []
        for i, text in enumerate(texts):
            row = [0.0] * self.width
            row[i % self.width] = float(len(text) + 1)
            rows.append(row)
        return rows

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            lines = head.split("\r\n")
            headers = {
                k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ln)
            }
            body = json.loads(await reader.readexactly(int(headers["content-length"])))
            self.requests.append({"line": lines[0], "headers": headers, "body": body})
            action = self.script.pop(0) if self.script else "ok"
            status, extra, payload = 200, {}, b""
            if action == "ok" or (isinstance(action, tuple) and action[0] == "slow"):
                if isinstance(action, tuple):
                    await asyncio.sleep(action[1])
                data = [
                    {"object": "embedding", "index": i, "embedding": v}
                    for i, v in enumerate(self.vectors(body["input"]))
                ]
                data.reverse()  # the API may answer out of order; index says where
                payload = json.dumps({"object": "list", "data": data}).encode()
            elif action == "malformed":
                payload = b'{"data": [{"index": 0, "embedding": "not numbers"'
            elif action == "truncated":  # promises 1000 bytes, sends 10, hangs up
                writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"data": [')
                await writer.drain()
                return
            else:
                status, extra = action[1], action[2] if len(action) > 2 else {}
                error = {"error": {"message": f"no ({KEY} is not welcome)", "type": "x"}}
                payload = json.dumps(error).encode()
            response = [f"HTTP/1.1 {status} X", "Content-Type: application/json"]
            response += [f"{k}: {v}" for k, v in extra.items()]
            response += [f"Content-Length: {len(payload)}", "Connection: close", "", ""]
            writer.write("\r\n".join(response).encode() + payload)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    state = Api()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}/v1"
    async with server:
        yield state
        server.close()


def client(api: Api, **options: Any) -> OpenAIEmbedder:
    settings: dict[str, Any] = {"api_key": KEY, "backoff": 0.01, "timeout": 2.0} | options
    return OpenAIEmbedder(api.url, "text-embedding-3-small", **settings)


async def test_api_batches_by_count_and_characters(api: Api) -> None:
    model = client(api, max_batch=3, max_batch_chars=25, concurrency=2)
    texts = ["a" * 10, "b" * 10, "c" * 10, "d", "e", "f", "g" * 40]
    vectors = await model.embed(texts)
    assert vectors.shape == (7, 768)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    sizes = sorted(len(r["body"]["input"]) for r in api.requests)
    assert sizes == [1, 1, 2, 3]  # [a b] (chars), [c d e] (count), [f] then [g*40] alone
    first = api.requests[0]
    assert first["line"] == "POST /v1/embeddings HTTP/1.1"
    assert first["headers"]["authorization"] == f"Bearer {KEY}"
    assert first["body"]["model"] == "text-embedding-3-small"
    assert first["body"]["dimensions"] == 768
    # rows come back in input order though the server answered in reverse
    batch_of_a = next(r for r in api.requests if r["body"]["input"][0] == "a" * 10)
    assert batch_of_a["body"]["input"] == ["a" * 10, "b" * 10]
    assert vectors[0, 0] == 1.0 and vectors[1, 1] == 1.0
    assert embedder_stamp(model)["name"] == "openai-api/text-embedding-3-small"


async def test_api_pads_a_narrower_model(api: Api) -> None:
    api.width = 384
    vectors = await client(api, send_dimensions=False, dimensions=1536).embed(["x", "yy"])
    assert vectors.shape == (2, 1536) and not vectors[:, 384:].any()
    assert "dimensions" not in api.requests[0]["body"]


async def test_api_retries_429_and_500_honouring_retry_after(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api.script = [("status", 429, {"Retry-After": "0.3"}), ("status", 500)]
    started = asyncio.get_running_loop().time()
    with caplog.at_level(logging.WARNING, logger="codeatlas.embedders.openai_api"):
        vectors = await client(api).embed(["retry me"])
    assert asyncio.get_running_loop().time() - started >= 0.3  # waited what 429 asked
    assert vectors.shape == (1, 768) and len(api.requests) == 3
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING"]
    assert "HTTP 429" in caplog.records[0].getMessage()
    assert all(KEY not in r.getMessage() for r in caplog.records)  # the key is never logged


async def test_api_gives_up_with_a_retryable_error(api: Api) -> None:
    api.script = [("status", 503)] * 3
    with pytest.raises(EmbedderError) as caught:
        await client(api, max_retries=2).embed(["x"])
    assert caught.value.retryable and caught.value.status == 503
    assert "after 3 attempts" in str(caught.value) and KEY not in str(caught.value)
    assert "***" in str(caught.value)  # the server's message, key scrubbed


async def test_api_refusal_is_not_retried(api: Api) -> None:
    api.script = [("status", 401)]
    model = client(api)
    with pytest.raises(EmbedderError) as caught:
        await model.embed(["x"])
    assert not caught.value.retryable and caught.value.status == 401
    assert len(api.requests) == 1
    assert KEY not in str(caught.value) and KEY not in repr(model)


async def test_api_slow_answer_times_out_then_retries(api: Api) -> None:
    api.script = [("slow", 1.5)]
    started = asyncio.get_running_loop().time()
    vectors = await client(api, timeout=0.3).embed(["x"])
    assert vectors.shape == (1, 768) and len(api.requests) == 2
    assert asyncio.get_running_loop().time() - started < 1.4  # did not wait for the slow one
    api.script = [("slow", 1.0)] * 2
    with pytest.raises(EmbedderError, match=r"no answer within 0\.3 s") as caught:
        await client(api, timeout=0.3, max_retries=1).embed(["x"])
    assert caught.value.retryable


async def test_api_malformed_body_is_an_embedder_error(api: Api) -> None:
    api.script = ["truncated"]  # a connection cut mid-answer is retried
    assert (await client(api).embed(["x"])).shape == (1, 768)
    assert len(api.requests) == 2
    api.script = ["malformed"]
    with pytest.raises(EmbedderError, match="malformed") as caught:
        await client(api).embed(["x"])
    assert not caught.value.retryable


async def test_api_refuses_bad_settings_and_unreachable_is_retryable() -> None:
    with pytest.raises(InvalidInputError, match="base_url"):
        OpenAIEmbedder("ftp://x", "m")
    with pytest.raises(InvalidInputError, match="concurrency"):
        OpenAIEmbedder("http://127.0.0.1:9/v1", "m", concurrency=0)
    # a closed port: connection refused, retried, then a retryable error
    model = OpenAIEmbedder("http://127.0.0.1:9/v1", "m", max_retries=1, backoff=0.01)
    with pytest.raises(EmbedderError, match="connection failed") as caught:
        await model.embed(["x"])
    assert caught.value.retryable
