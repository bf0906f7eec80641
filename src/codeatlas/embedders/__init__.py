"""Text embeddings: the ``Embedder`` protocol and its implementations.

Everything in codeatlas that needs an embedding takes an ``Embedder``: an object with a
``dimensions`` attribute and ``async embed(texts) -> ndarray`` returning one L2-normalised
float32 row per text (optional ``name`` and ``version`` attributes say which model made a
vector; the indexer records them, see ``embedder_stamp``). Three ship with codeatlas:

* ``HashingEmbedder`` (``embedders.hashing``): signed feature hashing, no model and no
  network; what the indexer, ``codeatlas demo`` and ``codeatlas search`` use by default;
* ``WordLlamaEmbedder`` (``embedders.local``, extra ``local``): a static-embedding model
  whose weights ship in the ``wordllama`` wheel; offline, CPU only;
* ``OpenAIEmbedder`` (``embedders.openai_api``): any OpenAI-compatible ``/v1/embeddings``
  API, batched, concurrent and retried.

The last two load only when imported (``import codeatlas.embedders`` loads neither the
model's packages nor an HTTP client). ``embedder(name, dimensions)`` builds the offline ones
by the names the command line uses.
"""

from __future__ import annotations

from typing import Final

from .base import SUPPORTED_DIMENSIONS, Embedder, embedder_stamp, pad_rows
from .hashing import HashingEmbedder, tokenize

__all__ = [
    "EMBEDDER_NAMES",
    "SUPPORTED_DIMENSIONS",
    "Embedder",
    "HashingEmbedder",
    "embedder",
    "embedder_stamp",
    "pad_rows",
    "tokenize",
]

#: The offline embedders by the names ``codeatlas search --embedder`` takes.
EMBEDDER_NAMES: Final = ("hashing", "local")


def embedder(name: str, dimensions: int) -> Embedder:
    """Return the offline embedder called *name* ("hashing" or "local") at *dimensions*."""
    from ..errors import InvalidInputError

    if name == "hashing":
        return HashingEmbedder(dimensions)
    if name == "local":
        from .local import WordLlamaEmbedder

        return WordLlamaEmbedder(dimensions)
    raise InvalidInputError(f"embedder must be one of {EMBEDDER_NAMES}, got {name!r}")
