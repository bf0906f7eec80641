"""``OpenAIEmbedder``: embeddings from any OpenAI-compatible HTTP API (``POST /v1/embeddings``).

OpenAI, Azure-style gateways, vLLM, llama.cpp's server, Ollama and text-embeddings-inference
all speak this shape::

    request  {"model": "...", "input": ["text", ...], "dimensions": 768}
    response {"data": [{"index": 0, "embedding": [0.1, ...]}, ...]}

Inputs are split into requests of at most ``max_batch`` texts and ``max_batch_chars``
characters (about four characters a token for English and code, so the default 400 000
stays under the common 300 000-token request limit with room to spare; a single longer
text goes alone), at most ``concurrency`` requests in flight. A 429, a 5xx, a timeout or a
broken connection is retried up to ``max_retries`` times with exponential backoff and full
jitter, waiting at least what a ``Retry-After`` header asks (capped at ``max_backoff``).
Every failure is an ``EmbedderError`` (``retryable`` when trying again later may succeed).
The API key goes into the ``Authorization`` header only: never into a repr, a log line or an
error message.

HTTP runs on the standard library (``urllib.request``, in worker threads), so the extra
needs no client package; each request has its own ``timeout`` for the whole exchange.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.client
import json
import logging
import math
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..errors import EmbedderError, InvalidInputError
from .base import SUPPORTED_DIMENSIONS, checked_texts, pad_rows

__all__ = ["OpenAIEmbedder"]

logger = logging.getLogger(__name__)

_RETRY_STATUS: Final = frozenset({408, 409, 425, 429})
_MAX_ERROR_DETAIL: Final = 200
_MAX_RESPONSE: Final = 256 * 1024 * 1024


class _Retryable(Exception):
    """One attempt failed in a way another attempt may not (internal)."""

    def __init__(self, message: str, status: int | None, retry_after: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def _redacted(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _retry_after(value: str | None) -> float | None:
    """Return the seconds a Retry-After header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error = group.exceptions[0]
    return _first(error) if isinstance(error, BaseExceptionGroup) else error


class OpenAIEmbedder:
    """Embed texts through an OpenAI-compatible ``/v1/embeddings`` endpoint.

    *base_url* is the API root (``https://api.openai.com/v1``); *dimensions* the width
    codeatlas stores (768 or 1536). With *send_dimensions* the request asks the model for that
    width (``text-embedding-3-*`` support it); a model answering with fewer values is
    zero-padded, one answering with more is an error.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        dimensions: int = 768,
        api_key: str | None = None,
        send_dimensions: bool = True,
        max_batch: int = 256,
        max_batch_chars: int = 400_000,
        concurrency: int = 4,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        if dimensions not in SUPPORTED_DIMENSIONS:
            raise InvalidInputError(
                f"dimensions must be one of {SUPPORTED_DIMENSIONS}, got {dimensions!r}"
            )
        if not isinstance(base_url, str) or urllib.parse.urlsplit(base_url).scheme not in (
            "http",
            "https",
        ):
            raise InvalidInputError("base_url must be an http:// or https:// URL")
        if not isinstance(model, str) or not model:
            raise InvalidInputError("model must be a non-empty str")
        for field, value, low in (
            ("max_batch", max_batch, 1),
            ("max_batch_chars", max_batch_chars, 1),
            ("concurrency", concurrency, 1),
            ("max_retries", max_retries, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidInputError(f"{field} must be an int >= {low}, got {value!r}")
        for field, number in (
            ("timeout", timeout),
            ("backoff", backoff),
            ("max_backoff", max_backoff),
        ):
            if (
                isinstance(number, bool)
                or not isinstance(number, int | float)
                or not math.isfinite(number)
                or number <= 0
            ):
                raise InvalidInputError(f"{field} must be a positive number of seconds")
        self._url = base_url.rstrip("/") + "/embeddings"
        self._shown_url = _redacted(self._url)
        self._model = model
        self._dimensions = dimensions
        self._api_key = api_key
        self._send_dimensions = send_dimensions
        self.max_batch = max_batch
        self.max_batch_chars = max_batch_chars
        self.concurrency = concurrency
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self._limits: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    # what the indexer records of the embedder that made a row (see embedder_stamp)
    @property
    def name(self) -> str:
        """``openai-api/<model>``."""
        return f"openai-api/{self._model}"

    @property
    def version(self) -> str:
        """The model id: an API names a model version by its id."""
        return self._model

    @property
    def dimensions(self) -> int:
        """The vector width stored."""
        return self._dimensions

    def __repr__(self) -> str:
        return (
            f"OpenAIEmbedder({self._shown_url!r}, model={self._model!r}, "
            f"dimensions={self._dimensions})"
        )

    def batches(self, texts: Sequence[str]) -> list[tuple[int, int]]:
        """Return the (start, end) slices of *texts* sent as one request each."""
        spans: list[tuple[int, int]] = []
        start = 0
        while start < len(texts):
            end, chars = start + 1, len(texts[start])
            while end < len(texts) and end - start < self.max_batch:
                if chars + len(texts[end]) > self.max_batch_chars:
                    break
                chars += len(texts[end])
                end += 1
            spans.append((start, end))
            start = end
        return spans

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return one unit float32 row per text, requests batched and retried."""
        texts = checked_texts(texts)
        out = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        if not texts:
            return out
        limit = self._limit()

        async def run(start: int, end: int) -> None:
            async with limit:
                out[start:end] = await self._request(texts[start:end])

        spans = self.batches(texts)
        if len(spans) == 1:
            await run(*spans[0])
            return out
        try:
            async with asyncio.TaskGroup() as group:
                for start, end in spans:
                    group.create_task(run(start, end))
        except BaseExceptionGroup as failed:
            # the other requests were cancelled; the caller sees the first failure as it was
            raise _first(failed) from None
        return out

    def _limit(self) -> asyncio.Semaphore:
        # a semaphore belongs to one event loop; an instance may serve several (tests, threads)
        loop = asyncio.get_running_loop()
        limit = self._limits.get(loop)
        if limit is None:
            self._limits = {k: v for k, v in self._limits.items() if not k.is_closed()}
            limit = self._limits[loop] = asyncio.Semaphore(self.concurrency)
        return limit

    async def _request(self, texts: list[str]) -> npt.NDArray[np.float32]:
        body: dict[str, Any] = {"model": self._model, "input": texts}
        if self._send_dimensions:
            body["dimensions"] = self._dimensions
        payload = json.dumps(body).encode()
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(self.timeout):
                    raw = await asyncio.to_thread(self._post, payload)
                return self._parse(raw, len(texts))
            except TimeoutError:
                failure = _Retryable(f"no answer within {self.timeout:g} s", None, None)
            except _Retryable as exc:
                failure = exc
            if attempt >= self.max_retries:
                raise EmbedderError(
                    f"embedding request to {self._shown_url} failed after "
                    f"{attempt + 1} attempts: {failure}",
                    status=failure.status,
                    retryable=True,
                )
            delay = random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))
            if failure.retry_after is not None:
                delay = max(delay, min(failure.retry_after, self.max_backoff))
            attempt += 1
            logger.warning(
                "embedding request to %s: %s; retry %d of %d in %.2f s",
                self._shown_url,
                failure,
                attempt,
                self.max_retries,
                delay,
            )
            await asyncio.sleep(delay)

    def _post(self, payload: bytes) -> bytes:
        """Send one request (in a worker thread); return the body of a 2xx answer."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self._url, data=payload, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > _MAX_RESPONSE:
                    raise EmbedderError(f"embedding response from {self._shown_url} is too large")
                # read() without a size raises IncompleteRead when the body is cut short
                data: bytes = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = self._detail(exc)
            exc.close()
            message = f"HTTP {status}{detail}"
            if status in _RETRY_STATUS or status >= 500:
                wait = _retry_after(exc.headers.get("Retry-After"))
                raise _Retryable(message, status, wait) from None
            raise EmbedderError(
                f"embedding request to {self._shown_url} refused: {message}", status=status
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            # refused, reset, DNS, socket timeout, a truncated or garbled answer
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise _Retryable(f"connection failed: {self._scrub(str(reason))}", None, None) from None
        if len(data) > _MAX_RESPONSE:
            raise EmbedderError(f"embedding response from {self._shown_url} is too large")
        return data

    def _detail(self, exc: urllib.error.HTTPError) -> str:
        """Return ': <the API's error message>' from an error body, shortened, key removed."""
        try:
            text = exc.read(4096).decode("utf-8", "replace")
            error = json.loads(text).get("error")
            message = error.get("message") if isinstance(error, dict) else error
            text = str(message) if message else text
        except (OSError, ValueError, AttributeError):
            return ""
        text = " ".join(self._scrub(text).split())[:_MAX_ERROR_DETAIL]
        return f": {text}" if text else ""

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _parse(self, raw: bytes, count: int) -> npt.NDArray[np.float32]:
        """Return the rows of a response body, in input order, normalised and padded."""
        where = f"embedding response from {self._shown_url}"
        try:
            document = json.loads(raw)
            items = document["data"]
            if not isinstance(items, list) or len(items) != count:
                got = len(items) if isinstance(items, list) else type(items).__name__
                raise EmbedderError(f"{where}: {got} embeddings for {count} inputs")
            ordered = sorted(items, key=lambda item: int(item.get("index", 0)))
            rows = np.asarray([item["embedding"] for item in ordered], dtype=np.float64)
        except EmbedderError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise EmbedderError(f"{where} is malformed ({type(exc).__name__})") from None
        if rows.ndim != 2 or rows.shape[0] != count:
            raise EmbedderError(f"{where}: embeddings of unequal or no width")
        if rows.shape[1] > self._dimensions:
            raise EmbedderError(
                f"{where}: {rows.shape[1]}-d vectors do not fit {self._dimensions} columns"
            )
        if not np.isfinite(rows).all():
            raise EmbedderError(f"{where}: NaN or infinite values")
        if not np.linalg.norm(rows, axis=1).all():
            raise EmbedderError(f"{where}: a zero vector")
        return pad_rows(rows, self._dimensions)
