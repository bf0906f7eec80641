"""The current span's attributes, set from deep inside codeatlas (the executor, the search).

State only, importing nothing: ``codeatlas.telemetry`` turns it on. Callers check
``ENABLED`` first, so without OpenTelemetry a call site costs one attribute read.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["ENABLED", "note", "note_settings"]

#: True while ``codeatlas.telemetry`` has the repositories instrumented.
ENABLED: bool = False
#: ``opentelemetry.trace``, set by ``codeatlas.telemetry.instrument()``.
trace: Any = None
_KNOBS: Final = {"ivfflat.probes": "codeatlas.probes", "hnsw.ef_search": "codeatlas.ef_search"}


def note(name: str, value: str | int | float | bool) -> None:
    """Set attribute *name* on the current span (nothing when not instrumented)."""
    if ENABLED:
        trace.get_current_span().set_attribute(name, value)


def note_settings(settings: Any) -> None:
    """Record the search knobs among *settings* on the current span."""
    if ENABLED:
        span = trace.get_current_span()
        for setting, attribute in _KNOBS.items():
            value = settings.get(setting)
            if value is not None and str(value).isdigit():
                span.set_attribute(attribute, int(value))
