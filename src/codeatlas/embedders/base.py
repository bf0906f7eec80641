"""The ``Embedder`` protocol every embedding source implements, and the widths codeatlas stores."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol, runtime_checkable

import anyio.to_thread
import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError

__all__ = [
    "SUPPORTED_DIMENSIONS",
    "Embedder",
    "checked_texts",
    "embed_checked",
    "embedder_stamp",
    "pad_rows",
]

#: The vector widths of codeatlas' tables (``vector(768)`` and ``vector(1536)`` columns).
SUPPORTED_DIMENSIONS: Final = (768, 1536)
#: Batches with at least this many characters are embedded in a worker thread.
THREAD_MIN_CHARS: Final = 20_000


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of ``dimensions`` width."""

    @property
    def dimensions(self) -> int:
        """The vector width (768 or 1536 for codeatlas' tables)."""
        ...

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return an array of shape ``(len(texts), dimensions)``, one unit row per text."""
        ...


def embedder_stamp(embedder: Embedder) -> dict[str, Any]:
    """Return what the indexer records of the embedder that made a row's vector.

    ``name`` and ``version`` are the embedder's attributes of those names when it has them
    (the class name and "" otherwise); vectors of two embedders with different stamps are
    not comparable, so the indexer re-embeds a file whose stored stamp differs.
    """
    return {
        "name": str(getattr(embedder, "name", type(embedder).__name__)),
        "version": str(getattr(embedder, "version", "")),
        "dimensions": int(embedder.dimensions),
    }


def pad_rows(vectors: npt.NDArray[np.floating[Any]], dimensions: int) -> npt.NDArray[np.float32]:
    """Return *vectors* L2-normalised and zero-padded to *dimensions* columns (cosine unchanged).

    A row of zeros (a text with no known token) stays zero; callers decide what it means.
    """
    rows = np.asarray(vectors, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] > dimensions:
        raise ValueError(f"cannot pad shape {rows.shape} to {dimensions} columns")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    out = np.zeros((rows.shape[0], dimensions), dtype=np.float32)
    np.divide(rows, norms, out=out[:, : rows.shape[1]], where=norms > 0)
    return out


def checked_texts(texts: Sequence[str]) -> list[str]:
    """Return *texts* as a list, refusing one str or a non-str item (what embed takes)."""
    if isinstance(texts, str):
        raise InvalidInputError("embed takes a sequence of texts, not one str")
    batch = list(texts)
    for text in batch:
        if not isinstance(text, str):
            raise InvalidInputError(f"embed takes str items, got {type(text).__name__}")
    return batch


async def embed_checked(
    texts: Sequence[str], embed_sync: Callable[[list[str]], npt.NDArray[np.float32]]
) -> npt.NDArray[np.float32]:
    """Check *texts* and run the local *embed_sync* on them, in a worker thread when large.

    What every in-process embedder's ``embed`` does around its own computation.
    """
    batch = checked_texts(texts)
    if sum(map(len, batch)) >= THREAD_MIN_CHARS:
        vectors: npt.NDArray[np.float32] = await anyio.to_thread.run_sync(embed_sync, batch)
        return vectors
    return embed_sync(batch)
