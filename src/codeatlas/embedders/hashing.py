"""``HashingEmbedder``: offline text embeddings by signed feature hashing (no model, no network).

It tokenises code (identifiers split on snake_case, camelCase and digits, whole identifiers kept
too), gives every token a "word vector" made of its own signed hash bucket plus its character
trigrams (as fastText does, so ``argument``, ``arguments`` and ``args`` land near each other),
adds adjacent-token bigrams at a lower weight, and weights each token by ``1 + ln(tf)``. Hashes
come from blake2b, so a text embeds to the same vector in every process and on every machine.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from itertools import chain
from typing import Final, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInputError
from .base import SUPPORTED_DIMENSIONS, embed_checked

__all__ = ["HashingEmbedder", "tokenize"]

_WORD: Final = re.compile(r"\w+")
# Acronyms stay whole ("HTTPServer" -> HTTP, Server); other scripts' letters form their own runs.
_PART: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\W\d_A-Za-z]+")
# fmt: off
_STOP_WORDS: Final = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "def", "do", "else", "elif", "for", "from",
    "if", "in", "into", "is", "it", "its", "not", "of", "on", "or", "pass", "return", "self",
    "the", "this", "that", "to", "was", "we", "were", "will", "with",
})
# fmt: on
_MIN_TOKEN: Final = 2
_EMPTY_TOKEN: Final = "<empty>"
# Weights relative to a token's own bucket (1.0): the trigrams of a token share 0.5 between
# them, a bigram of adjacent tokens counts 0.5.
_TRIGRAM_WEIGHT: Final = 0.5
_BIGRAM_WEIGHT: Final = 0.5
_MIN_TRIGRAM_TOKEN: Final = 4
# Documents and characters per numpy pass: bound the temporary arrays (tens of MB).
_BLOCK_DOCS: Final = 2048
_BLOCK_CHARS: Final = 1 << 20
# The feature cache is dropped past this many tokens (memory); no result depends on it.
_MAX_VOCABULARY: Final = 1 << 22

_T = TypeVar("_T", bound=np.generic)


def tokenize(text: str) -> list[str]:
    """Return the tokens of *text* as ``HashingEmbedder`` sees them, in order.

    Each identifier yields its lowercased parts (split on ``_``, camelCase and digits) followed
    by the whole identifier when it has several parts (``parseArgs`` and ``parse_args`` both
    give ``parse``, ``args``, ``parse_args``). Tokens shorter than two characters and a small
    stop list are dropped.
    """
    tokens: list[str] = []
    for word in _WORD.findall(text):
        tokens.extend(_split_identifier(word))
    return tokens


def _split_identifier(word: str) -> list[str]:
    parts = [p.lower() for p in _PART.findall(word)]
    kept = [p for p in parts if len(p) >= _MIN_TOKEN and p not in _STOP_WORDS]
    if len(parts) > 1:
        whole = "_".join(parts)
        if whole not in _STOP_WORDS:
            kept.append(whole)
    return kept


def _hash64(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")


def _mix(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Return splitmix64 of *values* (a stable 64-bit mixer, wrapping arithmetic)."""
    z = values + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class _Column(Generic[_T]):
    """A growable 1-d numpy array (amortised appends, views without copies)."""

    def __init__(self, dtype: type[_T]) -> None:
        self._data: npt.NDArray[_T] = np.zeros(1024, dtype=dtype)
        self.size = 0

    def extend(self, values: Sequence[int] | Sequence[float]) -> None:
        end = self.size + len(values)
        if end > len(self._data):
            grown = np.zeros(max(end, 2 * len(self._data)), dtype=self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : end] = values
        self.size = end

    @property
    def array(self) -> npt.NDArray[_T]:
        return self._data[: self.size]


class _Vocabulary:
    """Tokens seen so far and their sparse word vectors, as flat numpy columns.

    Identifier -> token ids (CSR: ``word_offsets``/``word_tokens``); token -> 64-bit hash and
    word vector (CSR: ``vec_offsets``/``vec_buckets``/``vec_values``). Values never depend
    on the order tokens were first seen, only on the token.
    """

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self.clear()

    def clear(self) -> None:
        self.words: dict[str, int] = {}
        self.word_offsets = _Column(np.int64)
        self.word_offsets.extend([0])
        self.word_tokens = _Column(np.int64)
        self.tokens: dict[str, int] = {}
        self.token_hashes = _Column(np.uint64)
        self.vec_offsets = _Column(np.int64)
        self.vec_offsets.extend([0])
        self.vec_buckets = _Column(np.int64)
        self.vec_values = _Column(np.float64)
        self.grams: dict[str, tuple[int, bool]] = {}

    def add_words(self, words: set[str]) -> None:
        if len(self.tokens) >= _MAX_VOCABULARY:
            # Bounded memory; ids are internal, so starting over changes no result.
            self.clear()
        # Sorted: ids (and so summation order) then depend only on the texts embedded.
        new_words = sorted(words.difference(self.words))
        if not new_words:
            return
        offsets: list[int] = []
        flat: list[int] = []
        end = int(self.word_offsets.array[-1])
        for word in new_words:
            ids = [self._token_id(token) for token in _split_identifier(word)]
            flat.extend(ids)
            end += len(ids)
            offsets.append(end)
            self.words[word] = len(self.words)
        self.word_tokens.extend(flat)
        self.word_offsets.extend(offsets)

    def token_id(self, token: str) -> int:
        return self._token_id(token)

    def _gram(self, gram: str) -> tuple[int, bool]:
        gram_hash = _hash64("#" + gram)
        found = self.grams[gram] = (gram_hash % self.dimensions, bool((gram_hash >> 32) & 1))
        return found

    def _token_id(self, token: str) -> int:
        found = self.tokens.get(token)
        if found is not None:
            return found
        token_hash = _hash64(token)
        buckets = [token_hash % self.dimensions]
        values = [1.0 if (token_hash >> 32) & 1 else -1.0]
        if len(token) >= _MIN_TRIGRAM_TOKEN:
            marked = f"<{token}>"
            # Sorted so the summation order (and so the last bit) is the same everywhere.
            grams = sorted({marked[i : i + 3] for i in range(len(marked) - 2)})
            weight = _TRIGRAM_WEIGHT / len(grams) ** 0.5
            for gram in grams:
                bucket, positive = self.grams.get(gram) or self._gram(gram)
                buckets.append(bucket)
                values.append(weight if positive else -weight)
        self.token_hashes.extend([token_hash])
        self.vec_buckets.extend(buckets)
        self.vec_values.extend(values)
        self.vec_offsets.extend([int(self.vec_offsets.array[-1]) + len(buckets)])
        self.tokens[token] = len(self.tokens)
        return self.tokens[token]


def _gather(
    offsets: npt.NDArray[np.int64], ids: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Return (positions into the flat CSR column, owner index) for the rows *ids*."""
    starts = offsets[ids]
    lengths = offsets[ids + 1] - starts
    owner = np.repeat(np.arange(len(ids), dtype=np.int64), lengths)
    first = np.cumsum(lengths) - lengths
    positions = np.arange(int(lengths.sum()), dtype=np.int64) - first[owner] + starts[owner]
    return positions, owner


class HashingEmbedder:
    """Embed code and prose offline with signed feature hashing (no model, no network).

    Deterministic across processes and machines; related identifiers share subword features.
    An instance caches token features and is safe to share between tasks and threads.
    """

    #: what the indexer records of the embedder that made a row (see ``embedder_stamp``)
    name: Final = "hashing"
    version: Final = "1"

    def __init__(self, dimensions: int = 768) -> None:
        if dimensions not in SUPPORTED_DIMENSIONS:
            raise InvalidInputError(
                f"HashingEmbedder dimensions must be one of {SUPPORTED_DIMENSIONS}, "
                f"got {dimensions!r}"
            )
        self._dimensions = dimensions
        self._vocabulary = _Vocabulary(dimensions)
        self._lock = threading.Lock()

    @property
    def dimensions(self) -> int:
        """The vector width."""
        return self._dimensions

    def __repr__(self) -> str:
        return f"HashingEmbedder(dimensions={self._dimensions})"

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return one unit float32 row per text; large batches run in a worker thread."""
        return await embed_checked(texts, self.embed_sync)

    def embed_sync(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Return what ``embed`` returns, computed in the calling thread."""
        out = np.empty((len(texts), self._dimensions), dtype=np.float32)
        with self._lock:
            start = 0
            while start < len(texts):
                end, chars = start + 1, len(texts[start])
                while end < len(texts) and end - start < _BLOCK_DOCS:
                    chars += len(texts[end])
                    if chars > _BLOCK_CHARS:
                        break
                    end += 1
                out[start:end] = self._embed_block(texts[start:end])
                start = end
        return out

    def _embed_block(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        vocab = self._vocabulary
        dims = self._dimensions
        n_docs = len(texts)
        words_per_doc = [_WORD.findall(text) for text in texts]
        vocab.add_words(set(chain.from_iterable(words_per_doc)))
        lengths = np.fromiter(map(len, words_per_doc), dtype=np.int64, count=n_docs)
        word_ids = np.fromiter(
            map(vocab.words.__getitem__, chain.from_iterable(words_per_doc)),
            dtype=np.int64,
            count=int(lengths.sum()),
        )
        word_doc = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)

        # Identifier occurrences -> token occurrences, in text order.
        positions, owner = _gather(vocab.word_offsets.array, word_ids)
        token_ids = vocab.word_tokens.array[positions]
        token_doc = word_doc[owner]
        # (document, token) and (document, token, token) pack into one int64 each.
        token_bits = max(len(vocab.tokens).bit_length(), 1)
        token_mask = (1 << token_bits) - 1
        dense = np.zeros(n_docs * dims, dtype=np.float64)

        # Unigrams: 1 + ln(tf) per (document, token), times the token's word vector.
        pairs, counts = np.unique((token_doc << token_bits) | token_ids, return_counts=True)
        pair_weight = 1.0 + np.log(counts)
        vec_positions, vec_owner = _gather(vocab.vec_offsets.array, pairs & token_mask)
        dense += np.bincount(
            (pairs >> token_bits)[vec_owner] * dims + vocab.vec_buckets.array[vec_positions],
            weights=vocab.vec_values.array[vec_positions] * pair_weight[vec_owner],
            minlength=n_docs * dims,
        )

        # Bigrams of adjacent tokens in one document, hashed from the two token hashes.
        same_doc = token_doc[1:] == token_doc[:-1]
        left, right = token_ids[:-1][same_doc], token_ids[1:][same_doc]
        doc = token_doc[1:][same_doc]
        if 2 * token_bits + n_docs.bit_length() <= 63:
            keys, counts = np.unique(
                (((doc << token_bits) | left) << token_bits) | right, return_counts=True
            )
            doc, left, right = (
                keys >> (2 * token_bits),
                (keys >> token_bits) & token_mask,
                keys & token_mask,
            )
        else:
            triples, counts = np.unique(
                np.stack([doc, left, right], axis=1), axis=0, return_counts=True
            )
            doc, left, right = triples[:, 0], triples[:, 1], triples[:, 2]
        hashes = vocab.token_hashes.array
        mixed = _mix(hashes[left] * np.uint64(0x100000001B3) ^ hashes[right])
        signs = np.where(((mixed >> np.uint64(32)) & np.uint64(1)).astype(bool), 1.0, -1.0)
        dense += np.bincount(
            doc * dims + (mixed % np.uint64(dims)).astype(np.int64),
            weights=signs * _BIGRAM_WEIGHT * (1.0 + np.log(counts)),
            minlength=n_docs * dims,
        )

        matrix = dense.reshape(n_docs, dims)
        norms = np.linalg.norm(matrix, axis=1)
        # No tokens (or, vanishingly rarely, features cancelling out): use a fixed vector so
        # that cosine similarity stays defined.
        empty = norms == 0.0
        if empty.any():
            token = vocab.token_id(_EMPTY_TOKEN)
            lo, hi = (int(x) for x in vocab.vec_offsets.array[token : token + 2])
            fallback = np.bincount(
                vocab.vec_buckets.array[lo:hi],
                weights=vocab.vec_values.array[lo:hi],
                minlength=dims,
            )
            matrix[empty] = fallback
            norms[empty] = np.linalg.norm(fallback)
        unit: npt.NDArray[np.float64] = matrix / norms[:, None]
        return unit.astype(np.float32)
