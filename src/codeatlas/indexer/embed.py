"""Stage 4, embed: the vectors of a batch of files (file summaries, chunks, symbols)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from ..analysis.scan import FileAnalysis
from ..embedders import Embedder
from ..errors import InvalidInputError
from .rows import chunks_of, summary_text, symbol_text, symbols_of

__all__ = ["Vectors", "check_embedder", "embed_batch"]

_REQUEST: Final = 4096


@dataclass(frozen=True, slots=True)
class Vectors:
    """Per file of a batch (same order): its summary, chunk and symbol vectors."""

    summaries: npt.NDArray[np.float32]
    chunks: tuple[npt.NDArray[np.float32], ...]
    symbols: tuple[npt.NDArray[np.float32], ...]


def check_embedder(embedder: Embedder, dimensions: int, role: str) -> None:
    """Raise InvalidInputError unless *embedder* produces *dimensions*-wide vectors."""
    if getattr(embedder, "dimensions", None) != dimensions:
        raise InvalidInputError(
            f"{role} must produce {dimensions}-d vectors, "
            f"got {getattr(embedder, 'dimensions', None)!r}"
        )


async def _embed(embedder: Embedder, texts: list[str]) -> npt.NDArray[np.float32]:
    if not texts:
        return np.zeros((0, embedder.dimensions), dtype=np.float32)
    parts = [await embedder.embed(texts[i : i + _REQUEST]) for i in range(0, len(texts), _REQUEST)]
    vectors = np.concatenate(parts).astype(np.float32, copy=False)
    if vectors.shape != (len(texts), embedder.dimensions):
        raise InvalidInputError(
            f"embedder returned shape {vectors.shape}, expected {(len(texts), embedder.dimensions)}"
        )
    return vectors


def _split(
    vectors: npt.NDArray[np.float32], sizes: list[int]
) -> tuple[npt.NDArray[np.float32], ...]:
    bounds = np.cumsum([0, *sizes])
    return tuple(vectors[bounds[i] : bounds[i + 1]] for i in range(len(sizes)))


async def embed_batch(
    analyses: Sequence[FileAnalysis], *, small: Embedder, large: Embedder
) -> Vectors:
    """Return the vectors of *analyses*: summaries with *large*, chunks and symbols with *small*."""
    summaries = await _embed(large, [summary_text(a) for a in analyses])
    chunk_sizes = [chunks_of(a) for a in analyses]
    chunks = await _embed(
        small, [c.text for a, n in zip(analyses, chunk_sizes, strict=True) for c in a.chunks[:n]]
    )
    symbols = [symbols_of(a) for a in analyses]
    symbol_vectors = await _embed(
        small, [symbol_text(a, s) for a, ss in zip(analyses, symbols, strict=True) for s in ss]
    )
    return Vectors(
        summaries,
        _split(chunks, chunk_sizes),
        _split(symbol_vectors, [len(ss) for ss in symbols]),
    )
