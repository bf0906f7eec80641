"""The ``Embedder`` protocol every embedding source implements, and the widths codeatlas stores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["SUPPORTED_DIMENSIONS", "Embedder"]

#: The vector widths of codeatlas' tables (``vector(768)`` and ``vector(1536)`` columns).
SUPPORTED_DIMENSIONS: Final = (768, 1536)


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
