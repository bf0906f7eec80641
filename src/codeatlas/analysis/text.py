"""Text PostgreSQL can store: no NUL characters, no lone UTF-16 surrogates.

PostgreSQL ``text`` and ``jsonb`` cannot hold U+0000, and UTF-8 cannot encode a lone
surrogate (U+D800..U+DFFF, which Python strings may carry after an escape sequence such as
``"\\ud800"`` in a docstring). ``storable`` replaces each with U+FFFD, the replacement
character, so a file's text keeps its length in characters and its line numbers.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["REPLACEMENT", "storable", "storable_json"]

REPLACEMENT: Final = "\ufffd"
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> tuple[str, int]:
    """Return *text* with NUL and lone surrogates replaced by U+FFFD, and how many were."""
    if not _UNSTORABLE.search(text):
        return text, 0
    return _UNSTORABLE.subn(REPLACEMENT, text)


def storable_json(value: Any) -> Any:
    """Return *value* (JSON-shaped) with every string, keys included, made storable."""
    if isinstance(value, str):
        return storable(value)[0]
    if isinstance(value, dict):
        return {storable_json(k): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v) for v in value]
    return value
