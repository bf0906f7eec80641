"""``WordLlamaEmbedder``: a local static-embedding model whose weights ship in a PyPI wheel.

WordLlama (``pip install 'codeatlas[local]'``) is a token-embedding table distilled from an
LLM's input embeddings: a text's vector is the mean of its tokens' 256-d rows, so embedding
is one tokenizer pass (Rust) and a gather, with no network and no GPU. codeatlas reads the
weights and the tokenizer straight from the installed package's folders with ``safetensors``
and ``tokenizers``: ``WordLlama.load()`` looks for the tokenizer in a folder that does not
exist (``tokenizer/`` for ``tokenizers/``) and then downloads it, and importing ``wordllama``
configures the root logger, so codeatlas never imports it.

Rows are L2-normalised and zero-padded to 768 or 1536 columns (padding leaves cosine
unchanged). A text with no token (empty, or only whitespace) gets the unit vector on the
first padding column: storable, and orthogonal to every real text.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..errors import EmbedderError, InvalidInputError
from .base import SUPPORTED_DIMENSIONS, embed_checked, pad_rows

__all__ = ["MODEL_DIMENSIONS", "WordLlamaEmbedder"]

#: The width of the model's own vectors (the wheel ships the 256-d table).
MODEL_DIMENSIONS: Final = 256
_CONFIG: Final = "l2_supercat"
_WEIGHTS: Final = f"weights/{_CONFIG}_{MODEL_DIMENSIONS}.safetensors"
_TOKENIZER: Final = f"tokenizers/{_CONFIG}_tokenizer_config.json"
_TENSOR: Final = "embedding.weight"
# Texts per tokenizer call: bounds the token lists held at once.
_BATCH: Final = 512


class _Model:
    """The loaded table and tokenizer (one per process, shared by every width)."""

    def __init__(self, table: npt.NDArray[np.float32], tokenizer: Any, version: str) -> None:
        self.table = table
        self.tokenizer = tokenizer
        self.version = version
        # tokenizers' Tokenizer is not documented as thread-safe for concurrent encode calls
        self.lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return the mean token row of each text (zeros for a text without tokens)."""
        out = np.zeros((len(texts), self.table.shape[1]), dtype=np.float32)
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        for start in range(0, len(texts), _BATCH):
            block = list(texts[start : start + _BATCH])
            with self.lock:
                encodings = encode(block, add_special_tokens=False)
            # one small gather per text stays in cache; one gather of the whole block
            # (100k+ rows of 1 KB) was 7x slower, measured
            for i, encoding in enumerate(encodings, start):
                ids = encoding.ids
                if ids:
                    out[i] = self.table[ids].mean(axis=0)
        return out


def _package_dir() -> Path:
    # find_spec locates the package without running its __init__ (which sets up logging)
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError(
            "the local embedder needs the wordllama package: pip install 'codeatlas[local]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def _load() -> _Model:
    """Load the model from the installed wheel, never from the network."""
    root = _package_dir()
    try:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        with safe_open(str(root / _WEIGHTS), framework="np") as f:
            table = np.ascontiguousarray(f.get_tensor(_TENSOR), dtype=np.float32)
        tokenizer = Tokenizer.from_file(str(root / _TOKENIZER))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        version = importlib.metadata.version("wordllama")
    except ImportError as exc:
        raise EmbedderError(
            f"the local embedder needs {exc.name or 'its dependencies'}: "
            "pip install 'codeatlas[local]'"
        ) from exc
    except Exception as exc:  # a damaged or different wheel: say which file
        raise EmbedderError(f"cannot load the wordllama model from {root}: {exc}") from exc
    if table.ndim != 2 or table.shape[1] != MODEL_DIMENSIONS:
        raise EmbedderError(f"unexpected wordllama table shape {table.shape}")
    return _Model(table, tokenizer, version)


class WordLlamaEmbedder:
    """Embed texts with the WordLlama model shipped in its wheel (offline, CPU, no download).

    The model loads on first use (about 0.3 s) and is shared by every instance in the process.
    """

    name: Final = "wordllama-l2_supercat-256"

    def __init__(self, dimensions: int = 768) -> None:
        if dimensions not in SUPPORTED_DIMENSIONS:
            raise InvalidInputError(
                f"WordLlamaEmbedder dimensions must be one of {SUPPORTED_DIMENSIONS}, "
                f"got {dimensions!r}"
            )
        self._dimensions = dimensions

    @property
    def dimensions(self) -> int:
        """The vector width (the model's 256 values, then zeros)."""
        return self._dimensions

    @property
    def version(self) -> str:
        """The installed wordllama version (loads the model)."""
        return _load().version

    def __repr__(self) -> str:
        return f"WordLlamaEmbedder(dimensions={self._dimensions})"

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return one unit float32 row per text; large batches run in a worker thread."""
        return await embed_checked(texts, self.embed_sync)

    def embed_sync(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return what ``embed`` returns, computed in the calling thread."""
        out = pad_rows(_load().embed(texts), self._dimensions)
        empty = ~out.any(axis=1)
        out[empty, MODEL_DIMENSIONS] = 1.0
        return out
