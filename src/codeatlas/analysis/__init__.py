"""Source-code analysis for indexing: metrics, Python structure, chunks and graphs."""

from .pagerank import pagerank

__all__ = ["pagerank"]
