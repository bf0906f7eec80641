"""OpenTelemetry spans and a search-latency histogram, when ``opentelemetry-api`` is installed.

``connect()`` calls ``instrument()``, which looks for OpenTelemetry once: when it is not
installed nothing is wrapped and nothing is ever imported (zero cost; ``import codeatlas``
never imports it either). When it is, every public coroutine of every repository class
runs inside a span named ``"<operation> <table>"`` (client kind) carrying the database
semantic conventions and codeatlas' own attributes:

========================  ===================================================================
``db.system.name``        ``postgresql``
``db.operation.name``     the method: ``search_similar``, ``get``, ``insert_many``, ...
``db.collection.name``    the table
``db.namespace``          the database name
``server.address/port``   the server the Atlas's primary pool connects to
``codeatlas.k``           k of a search
``codeatlas.probes``      ``ivfflat.probes`` a search ran with (``codeatlas.ef_search``: HNSW)
``codeatlas.rows``        rows returned (a list's length, a page's items, 1 or 0 for one row)
``codeatlas.cache.hit``   a cache-through search or a semantic cache lookup: hit or miss
``codeatlas.pool``        ``primary`` or ``replica``: which pool served the statement
``error.type``            the codeatlas error's class (the span's status is ERROR)
========================  ===================================================================

Never the query vector, filter values or row values. Searches (``search_*`` and
``semantic_cache.lookup``) also record their duration in the histogram
``codeatlas.search.duration`` (seconds).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from . import _spans
from .repositories._base import Repository

__all__ = ["instrument", "instrumented", "uninstrument"]

_PROBED: bool = False
_tracer: Any = None
_histogram: Any = None
_trace: Any = None
_status: Any = None
#: (class, name) -> the original function, to put back on ``uninstrument()``
_originals: dict[tuple[type, str], Any] = {}
_SCOPE: Final = "codeatlas"
_SEARCHES: Final = frozenset({"lookup"})


def instrumented() -> bool:
    """True when public operations make spans (OpenTelemetry is installed and instrumented)."""
    return _spans.ENABLED


def instrument() -> bool:
    """Wrap the repositories' public coroutines in spans, if OpenTelemetry is installed.

    Looks for it once per process; True when spans are made. Idempotent.
    """
    global _PROBED, _tracer, _histogram, _trace, _status
    if _spans.ENABLED:
        return True
    if not _PROBED:
        _PROBED = True
        try:
            from opentelemetry import metrics, trace
            from opentelemetry.trace import Status, StatusCode
        except ImportError:
            return False

        _trace = trace
        _status = (Status, StatusCode)
        _tracer = trace.get_tracer(_SCOPE)
        _histogram = metrics.get_meter(_SCOPE).create_histogram(
            "codeatlas.search.duration", unit="s", description="Duration of codeatlas searches"
        )
    if _trace is None:
        return False
    for cls in _repository_classes():
        for name, function in _public_coroutines(cls):
            _originals[(cls, name)] = cls.__dict__.get(name)
            setattr(cls, name, _traced(function, name, cls))
    _spans.trace = _trace
    _spans.ENABLED = True
    return True


def uninstrument() -> None:
    """Put the repositories' methods back as they were (spans stop)."""
    _spans.ENABLED = False
    for (cls, name), original in _originals.items():
        if original is None:
            delattr(cls, name)
        else:
            setattr(cls, name, original)
    _originals.clear()


def _repository_classes() -> list[type]:
    found: list[type] = []
    pending: list[type] = [Repository]
    while pending:
        cls = pending.pop()
        subclasses: list[type] = cls.__subclasses__()
        for sub in subclasses:
            if sub not in found:
                found.append(sub)
                pending.append(sub)
    return [cls for cls in found if isinstance(getattr(cls, "table", None), str)]


def _public_coroutines(cls: type) -> list[tuple[str, Callable[..., Any]]]:
    chosen: list[tuple[str, Callable[..., Any]]] = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attribute = inspect.getattr_static(cls, name)
        if isinstance(attribute, staticmethod | classmethod | property):
            continue
        function = getattr(attribute, "__wrapped__", attribute)
        if inspect.iscoroutinefunction(function):
            chosen.append((name, function))
    return chosen


def _rows(result: Any) -> int | None:
    if result is None:
        return 0
    items = getattr(result, "items", None)
    if isinstance(items, list):
        return len(items)
    if isinstance(result, list | tuple):
        return len(result)
    if isinstance(result, bool):
        return None
    if isinstance(result, int):
        return None  # a count, not rows returned
    return 1


def _traced(function: Callable[..., Any], operation: str, cls: type) -> Callable[..., Any]:
    table: str = cls.table  # type: ignore[attr-defined]
    span_name = f"{operation} {table}"
    search = operation.startswith("search") or operation in _SEARCHES
    signature = inspect.signature(function)
    k_position = _position(signature, "k")
    cache_hit = operation == "lookup"
    # the histogram's attributes are the same for every call (built once: searches are the
    # hot path, where each microsecond shows in a cache lookup's ratio to the raw query)
    measured = {"db.operation.name": operation, "db.collection.name": table}

    @functools.wraps(function)
    async def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider):
            # No tracer provider is configured (yet): a span would record nothing and cost
            # ~40-70 us a call. Checked per call, as a service may configure one later.
            if not search:
                return await function(self, *args, **kwargs)
            started = time.perf_counter()
            result = await function(self, *args, **kwargs)
            _histogram.record(time.perf_counter() - started, measured)
            return result
        state = self._executor.state
        host, port = state.endpoint
        attributes: dict[str, Any] = {
            "db.system.name": "postgresql",
            "db.operation.name": operation,
            "db.collection.name": table,
        }
        database = getattr(state, "database", "")
        if database:
            attributes["db.namespace"] = database
        if host and host != "the server":
            attributes["server.address"] = host
        if port.isdigit():
            attributes["server.port"] = int(port)
        if search:
            k = kwargs.get("k", args[k_position - 1] if 0 < k_position <= len(args) else None)
            if isinstance(k, int) and not isinstance(k, bool):
                attributes["codeatlas.k"] = k
        started = time.perf_counter()
        with _tracer.start_as_current_span(
            span_name,
            kind=_trace.SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                result = await function(self, *args, **kwargs)
            except BaseException as exc:
                if isinstance(exc, Exception):
                    # the type only: a message can quote a key or a value
                    kind = type(exc).__name__
                    span.set_attribute("error.type", kind)
                    span.add_event("exception", {"exception.type": kind})
                    span.set_status(_status[0](_status[1].ERROR, kind))
                raise
            rows = _rows(result)
            if rows is not None:
                span.set_attribute("codeatlas.rows", rows)
            if cache_hit:
                span.set_attribute("codeatlas.cache.hit", result is not None)
            if search:
                _histogram.record(time.perf_counter() - started, measured)
            return result

    return traced  # functools.wraps set __wrapped__: instrument() unwraps with it


def _position(signature: inspect.Signature, name: str) -> int:
    """Return the index of parameter *name* in *signature* (0 is self), or -1."""
    names: Sequence[str] = list(signature.parameters)
    return names.index(name) if name in names else -1
