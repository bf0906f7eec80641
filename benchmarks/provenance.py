"""Which run each figure of a results dict came from, and merging one run's results over
another's (``python -m benchmarks --merge earlier.json``).

A results dict holds *parts*: ``search/<dims>``, ``strategies/<dims>``, ``ingest/<dims>``,
``bulk_load``, ``caches/<name>`` and ``server_settings``. A merged dict keeps, under
``runs``, one record per run that still contributes a part (its command, date, duration,
load average, commit and the parts it contributed); the newer run's parts replace the
earlier's, the earlier's other parts are kept as they were measured.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any, Final

__all__ = ["commit", "describe", "merge", "parts", "runs", "source"]

#: Sections keyed by the table's dimensions.
PER_DIMENSION: Final = ("ingest", "search", "strategies")
_ROOT: Final = Path(__file__).parents[1]


def commit() -> str | None:
    """Return the checkout's commit (with ``+changes`` if its tracked files differ), or None."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", "src", "benchmarks"], cwd=_ROOT, check=False
        ).returncode
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def parts(results: dict[str, Any]) -> list[str]:
    """Return the parts *results* holds figures for."""
    found = [
        f"{section}/{dim}"
        for section in PER_DIMENSION
        for dim in sorted(results.get(section, {}), key=int)
    ]
    if results.get("bulk_load"):
        found.append("bulk_load")
    found += [f"caches/{name}" for name, value in results.get("caches", {}).items() if value]
    if results.get("server_settings"):
        found.append("server_settings")
    return found


def _record(results: dict[str, Any]) -> dict[str, Any]:
    machine = results["machine"]
    return {
        "command": results["command"],
        "date": machine["date"],
        "duration_s": results.get("duration_s"),
        "profile": results["profile"],
        "commit": results.get("commit"),
        "cpu": f"{machine.get('cpu_count')} × {machine.get('cpu_model')}",
        "packages": machine.get("packages", {}),
        "server_settings": machine.get("server_settings", {}),
        "load_average_start": machine["load_average_start"],
        "load_average_end": machine.get("load_average_end", []),
        "load_average_per_phase": machine.get("load_average_per_phase", []),
        "skipped": results.get("skipped", []),
        "parts": parts(results),
    }


def runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the records of the runs *results* comes from (one, unless it was merged)."""
    return results.get("runs") or [_record(results)]


def merge(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """Return *new* with the parts only *old* has added, and the runs of both recorded."""
    merged = copy.deepcopy(new)
    replaced = set(parts(new))
    for section in PER_DIMENSION:
        for dim, figures in old.get(section, {}).items():
            if f"{section}/{dim}" not in replaced:
                merged.setdefault(section, {})[dim] = copy.deepcopy(figures)
    for section in ("bulk_load", "server_settings"):
        if old.get(section) and section not in replaced:
            merged[section] = copy.deepcopy(old[section])
    for name, figures in old.get("caches", {}).items():
        if figures and f"caches/{name}" not in replaced:
            merged.setdefault("caches", {})[name] = copy.deepcopy(figures)
    kept = []
    for run in runs(old):
        left = [part for part in run["parts"] if part not in replaced]
        if left:
            kept.append({**run, "parts": left})
    merged["runs"] = kept + runs(new)
    return merged


def source(results: dict[str, Any], part: str) -> int | None:
    """Return the 1-based number of the run in ``runs(results)`` that produced *part*."""
    for number, run in enumerate(runs(results), 1):
        if part in run["parts"]:
            return number
    return None


def describe(part: str) -> str:
    """Return *part* in words (``search/768`` is "768-dim search sweep")."""
    section, _, dim = part.partition("/")
    words = {
        "search": f"{dim}-dim IVFFlat search sweep and overhead breakdown",
        "strategies": f"{dim}-dim index strategies",
        "ingest": f"{dim}-dim ingest",
        "bulk_load": "bulk load (768 dims)",
        "caches": f"{dim} cache",
        "server_settings": "embedded server settings",
    }
    return words.get(section, part)
