"""Synthetic embeddings: a clustered Gaussian mixture on the unit sphere, and exact top-k.

Real embedding sets are clustered (one topic, one module, one language) rather than uniform,
and IVFFlat's recall depends on that structure, so uniform random vectors would flatter or
punish the index arbitrarily. The mixture here has unevenly sized clusters with uneven
spreads along a low-rank subspace (see ``make_mixture``); queries are fresh draws from the
same mixture (never stored rows), and the ground truth is the exact cosine top-k computed
with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "Dataset",
    "Mixture",
    "exact_top_k",
    "make_dataset",
    "make_mixture",
    "near_duplicates",
    "normalise",
    "other_queries",
]

Vectors = npt.NDArray[np.float32]

#: Rows per block when sampling or scanning, so that no temporary exceeds ~100 MB.
_BLOCK_ROWS: Final = 8192
#: Mixture shape (see make_mixture), chosen so that IVFFlat with lists = rows / 1000 shows
#: the usual curve (simulated at 100k rows, 768 dims: recall@10 ~0.5 at probes 1, ~0.9 at
#: 8, ~0.97 at 16); a query's nearest row is at cosine ~0.73, its 10th at ~0.65.
_CLUSTERS: Final = 20
_RANK: Final = 24
_SPREAD: Final = (1.5, 2.5)
_ISOTROPIC: Final = 0.3


def normalise(vectors: Vectors) -> Vectors:
    """Return *vectors* scaled to unit L2 norm, row by row, in place."""
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


@dataclass(frozen=True, slots=True)
class Mixture:
    """A Gaussian mixture on the unit sphere whose spread lies mostly in a low-rank subspace.

    Each draw is a cluster centre plus noise: mostly along ``basis`` (rank r), plus a
    little isotropic noise, then L2-normalised. ``spreads`` is per cluster.
    """

    centres: Vectors
    spreads: npt.NDArray[np.float32]
    weights: npt.NDArray[np.float64]
    #: orthonormal rows spanning the directions the clusters spread along (r x dimensions)
    basis: Vectors
    isotropic: float

    @property
    def dimensions(self) -> int:
        """Return the dimension of the vectors this mixture draws."""
        return int(self.centres.shape[1])

    def sample(self, count: int, rng: np.random.Generator) -> Vectors:
        """Return *count* L2-normalised draws."""
        dim = self.dimensions
        rank = self.basis.shape[0]
        out = np.empty((count, dim), dtype=np.float32)
        for start in range(0, count, _BLOCK_ROWS):
            stop = min(start + _BLOCK_ROWS, count)
            labels = rng.choice(len(self.weights), size=stop - start, p=self.weights)
            along = rng.standard_normal((stop - start, rank), dtype=np.float32) @ self.basis
            along *= (self.spreads[labels] / np.sqrt(rank, dtype=np.float32))[:, None]
            block = out[start:stop]
            np.add(self.centres[labels], along, out=block)
            block += rng.standard_normal((stop - start, dim), dtype=np.float32) * np.float32(
                self.isotropic / np.sqrt(dim)
            )
            normalise(block)
        return out


def make_mixture(
    dimensions: int,
    centres: int,
    rng: np.random.Generator,
    *,
    rank: int,
    spread: tuple[float, float],
    isotropic: float,
) -> Mixture:
    """Return a mixture of *centres* random unit centres, spreading in a rank-*rank* subspace.

    Noise of norm s next to a unit centre puts two points of one cluster at cosine ~1/(1+s^2).
    Real embeddings have a low intrinsic dimension: with isotropic noise in all 768 or 1536
    dimensions instead, every member of a cluster is nearly equidistant from a query (the
    top 10 are an arbitrary pick) and IVFFlat is either trivial (tight clusters) or hopeless.
    The low-rank spread gives neighbours at every scale and a gradual recall-probes curve.
    """
    points = normalise(rng.standard_normal((centres, dimensions), dtype=np.float32))
    spreads = rng.uniform(*spread, size=centres).astype(np.float32)
    basis = np.linalg.qr(rng.standard_normal((dimensions, rank), dtype=np.float32))[0].T
    # Zipf-like cluster sizes: a few big clusters, a long tail of small ones
    weights = 1.0 / np.arange(1, centres + 1, dtype=np.float64) ** 0.7
    weights = rng.permutation(weights / weights.sum())
    return Mixture(points, spreads, weights, np.ascontiguousarray(basis), isotropic)


def near_duplicates(vectors: Vectors, similarity: float, rng: np.random.Generator) -> Vectors:
    """Return unit vectors at cosine similarity *similarity* to the matching rows of *vectors*."""
    noise = normalise(rng.standard_normal(vectors.shape, dtype=np.float32))
    # remove the component along the original so the angle is exactly controlled
    noise -= np.sum(noise * vectors, axis=1, keepdims=True) * vectors
    normalise(noise)
    sine = np.float32(np.sqrt(1.0 - similarity**2))
    return normalise((vectors * np.float32(similarity) + noise * sine).astype(np.float32))


def exact_top_k(base: Vectors, queries: Vectors, k: int) -> npt.NDArray[np.int64]:
    """Return, per query, the row numbers of the *k* most cosine-similar rows of *base*.

    Both inputs must be L2-normalised (cosine similarity is then the dot product). The base
    is scanned in blocks, keeping a running top-k, so memory stays at queries x block.
    """
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(base), _BLOCK_ROWS):
        scores = queries @ base[start : start + _BLOCK_ROWS].T
        take = min(k, scores.shape[1])
        part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        merged_scores = np.concatenate(
            [best_scores, np.take_along_axis(scores, part, axis=1)], axis=1
        )
        merged_rows = np.concatenate([best_rows, part + start], axis=1)
        keep = np.argpartition(-merged_scores, k - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(merged_scores, keep, axis=1)
        best_rows = np.take_along_axis(merged_rows, keep, axis=1)
    order = np.argsort(-best_scores, axis=1)
    return np.take_along_axis(best_rows, order, axis=1)


@dataclass(frozen=True, slots=True)
class Dataset:
    """Stored rows, held-out queries and the exact top-k of every query (row numbers)."""

    base: Vectors
    queries: Vectors
    truth: npt.NDArray[np.int64]

    @property
    def dimensions(self) -> int:
        """Return the dimension of the vectors."""
        return int(self.base.shape[1])


def make_dataset(dimensions: int, rows: int, queries: int, *, seed: int, k: int = 10) -> Dataset:
    """Return *rows* clustered vectors, *queries* fresh draws and their exact top-*k*.

    The generator is seeded by (*seed*, *dimensions*), so each dimension's data is fixed
    and independent of the other's.
    """
    rng = np.random.default_rng([seed, dimensions])
    mixture = make_mixture(
        dimensions, _CLUSTERS, rng, rank=_RANK, spread=_SPREAD, isotropic=_ISOTROPIC
    )
    base = mixture.sample(rows, rng)
    held_out = mixture.sample(queries, rng)
    return Dataset(base, held_out, exact_top_k(base, held_out, k))


def other_queries(
    dataset: Dataset, *, seed: int, tune: int, shifted: int, shift: float = 1.0, k: int = 10
) -> tuple[Vectors, Dataset]:
    """Return fresh draws of *dataset*'s mixture (for tuning) and a second query set.

    The second set is drawn around the mixture's cluster centres moved by noise of norm
    *shift* (then re-normalised): questions not shaped like the stored documents, which a
    recall measured on the documents' own distribution can misjudge. It comes with its
    exact top-*k* over ``dataset.base``. The mixture is rebuilt from *seed* exactly as
    ``make_dataset`` built it.
    """
    dimensions = dataset.dimensions
    rng = np.random.default_rng([seed, dimensions])
    mixture = make_mixture(
        dimensions, _CLUSTERS, rng, rank=_RANK, spread=_SPREAD, isotropic=_ISOTROPIC
    )
    other = np.random.default_rng([seed, dimensions, 2])
    tuning = mixture.sample(tune, other)
    moved = mixture.centres + normalise(
        other.standard_normal(mixture.centres.shape, dtype=np.float32)
    ) * np.float32(shift)
    displaced = Mixture(
        normalise(moved), mixture.spreads, mixture.weights, mixture.basis, mixture.isotropic
    )
    queries = displaced.sample(shifted, other)
    return tuning, Dataset(dataset.base, queries, exact_top_k(dataset.base, queries, k))
