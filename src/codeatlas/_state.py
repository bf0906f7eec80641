"""Per-Atlas state shared by every executor and repository of one ``connect()``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["AtlasState", "CacheStats", "PendingHits"]


@dataclass(slots=True)
class CacheStats:
    """Hits and misses of ``SemanticCache.lookup`` since this Atlas connected."""

    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float | None:
        """Hits over lookups, or None before the first lookup."""
        total = self.hits + self.misses
        return self.hits / total if total else None


@dataclass(slots=True)
class PendingHits:
    """Semantic-cache hits an Atlas counted and has not written yet (see SemanticCache).

    entry id -> (hits, the latest hit's time, naive UTC as the table stores it).
    """

    entries: dict[Any, tuple[int, datetime]] = field(default_factory=dict)

    def add(self, entry_id: Any, at: datetime) -> int:
        """Count a hit of *entry_id* at *at*; return this entry's hits pending here."""
        hits, latest = self.entries.get(entry_id, (0, at))
        self.entries[entry_id] = (hits + 1, max(latest, at))
        return hits + 1

    def take(self) -> dict[Any, tuple[int, datetime]]:
        """Return every pending hit and forget them (``restore`` gives them back)."""
        taken, self.entries = self.entries, {}
        return taken

    def restore(self, taken: dict[Any, tuple[int, datetime]]) -> None:
        """Add *taken* (from ``take``) back, with the hits counted since."""
        for entry_id, (hits, at) in taken.items():
            now_hits, latest = self.entries.get(entry_id, (0, at))
            self.entries[entry_id] = (hits + now_hits, max(latest, at))

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(slots=True)
class AtlasState:
    """Facts about the server and process-local caches, read once per Atlas."""

    #: pgvector version installed in the database, e.g. (0, 8, 6).
    pgvector_version: tuple[int, ...] = (0, 8, 0)
    #: index name -> (its index_strategies.SearchPlan, or None for the default; monotonic
    #: time read): the kind and tuned knobs searches use, re-read after probe_defaults_ttl.
    probe_defaults: dict[str, tuple[Any, float]] = field(default_factory=dict)
    #: seconds a tuned probes default read from the database is trusted before re-reading.
    probe_defaults_ttl: float = 30.0
    #: seconds a vector_similarity_cache entry stays valid.
    similarity_cache_ttl: float = 300.0
    #: semantic cache lookups of every scope of this Atlas.
    semantic_cache_stats: CacheStats = field(default_factory=CacheStats)
    #: semantic-cache hits counted by lookups and not yet written to the database.
    pending_hits: PendingHits = field(default_factory=PendingHits)
    #: called after a lookup counted a hit (starts the Atlas' background flush), or None.
    on_semantic_cache_hit: Callable[[], None] | None = None
    #: (host, port) the pool connects to, for error messages (never the DSN itself).
    endpoint: tuple[str, str] = ("the server", "")
    #: name of the database the Atlas is connected to (telemetry's db.namespace).
    database: str = ""
    #: seconds a pooled connection may sit idle before it is pinged ahead of its next use.
    pre_ping_after: float = 10.0
    #: seconds a ping may take before the connection is given up for another.
    pre_ping_timeout: float = 5.0

    @property
    def iterative_scans(self) -> bool:
        """True when pgvector supports ivfflat.iterative_scan (0.8.0 and newer)."""
        return self.pgvector_version >= (0, 8, 0)
