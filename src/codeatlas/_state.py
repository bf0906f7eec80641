"""Per-Atlas state shared by every executor and repository of one ``connect()``."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["AtlasState"]


@dataclass(slots=True)
class AtlasState:
    """Facts about the server and process-local caches, read once per Atlas."""

    #: pgvector version installed in the database, e.g. (0, 8, 6).
    pgvector_version: tuple[int, ...] = (0, 8, 0)
    #: index name -> (default probes or None, monotonic time read); see search.ProbeDefaults.
    probe_defaults: dict[str, tuple[int | None, float]] = field(default_factory=dict)
    #: seconds a tuned probes default read from the database is trusted before re-reading.
    probe_defaults_ttl: float = 30.0
    #: seconds a vector_similarity_cache entry stays valid.
    similarity_cache_ttl: float = 300.0

    @property
    def iterative_scans(self) -> bool:
        """True when pgvector supports ivfflat.iterative_scan (0.8.0 and newer)."""
        return self.pgvector_version >= (0, 8, 0)
