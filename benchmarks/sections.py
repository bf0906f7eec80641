"""Sections of docs/benchmarks.md that a benchmark script other than report.py writes.

``python -m benchmarks`` regenerates the page from its JSON, while the retrieval, hybrid and
cache benchmarks each own one ``## `` section of it. Such a section opens with a marker
comment naming its script; ``replace`` writes it in place (or appends it), and
``standalone`` returns the marked sections of the current page so that report.py keeps
them instead of dropping them on regeneration.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

DOCS: Final = Path(__file__).parents[1] / "docs" / "benchmarks.md"

_MARKER: Final = re.compile(r"^<!-- section written by (?P<command>.+?) -->$", re.MULTILINE)


def bounds(text: str, title: str) -> tuple[int, int] | None:
    """Return the start and end offsets of the ``## title`` section of *text*, or None."""
    match = re.search(rf"^## {re.escape(title)}\n", text, re.MULTILINE)
    if match is None:
        return None
    following = re.search(r"^## ", text[match.end() :], re.MULTILINE)
    end = len(text) if following is None else match.end() + following.start()
    return match.start(), end


def marked(title: str, command: str, body: str) -> str:
    """Return a ``## title`` section whose marker says *command* writes it."""
    return f"## {title}\n\n<!-- section written by {command} -->\n\n{body.strip()}\n"


def replace(title: str, command: str, body: str, path: Path = DOCS) -> None:
    """Write the ``## title`` section of *path* (in place, else at the end)."""
    text = path.read_text() if path.exists() else ""
    section = marked(title, command, body)
    found = bounds(text, title)
    if found is None:
        path.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    start, end = found
    rest = text[end:]
    path.write_text(text[:start] + section + ("\n" + rest if rest else ""))


def standalone(path: Path = DOCS) -> dict[str, str]:
    """Return the marked sections of *path*, title to whole section text, in page order."""
    if not path.exists():
        return {}
    text = path.read_text()
    found: dict[str, str] = {}
    for match in re.finditer(r"^## (?P<title>.+)\n", text, re.MULTILINE):
        found_at = bounds(text, match["title"])
        if found_at is None:
            continue
        section = text[found_at[0] : found_at[1]]
        if _MARKER.search(section):
            found[match["title"]] = section.rstrip("\n") + "\n"
    return found
