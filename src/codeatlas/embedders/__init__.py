"""Text embeddings: the ``Embedder`` protocol and its implementations.

Everything in codeatlas that needs an embedding takes an ``Embedder``: an object with a
``dimensions`` attribute and ``async embed(texts) -> ndarray`` returning one L2-normalised
float32 row per text. ``HashingEmbedder`` (``embedders.hashing``) needs no model and no
network; it is what the indexer and ``codeatlas demo`` use by default.

A hosted embedding API plugs in by implementing the protocol; for example with httpx (not a
codeatlas dependency)::

    class HostedEmbedder:
        dimensions = 768

        def __init__(self, client: httpx.AsyncClient, model: str) -> None:
            self._client, self._model = client, model

        async def embed(self, texts: Sequence[str]) -> np.ndarray:
            response = await self._client.post(
                "/v1/embeddings",
                json={"model": self._model, "input": list(texts), "dimensions": 768},
            )
            response.raise_for_status()
            rows = [item["embedding"] for item in response.json()["data"]]
            vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), 768)
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

Batch large inputs to the provider's request limit and retry on 429 in ``embed``; callers
only see the protocol.
"""

from __future__ import annotations

from .base import SUPPORTED_DIMENSIONS, Embedder
from .hashing import HashingEmbedder, tokenize

__all__ = ["SUPPORTED_DIMENSIONS", "Embedder", "HashingEmbedder", "tokenize"]
