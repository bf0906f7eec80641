"""OpenTelemetry: spans and the search-latency histogram, seen by the real SDK's in-memory
exporters (fixtures/telemetry.py); and nothing of it without OpenTelemetry."""

from __future__ import annotations

import subprocess
import sys

import pytest

import codeatlas
from codeatlas import telemetry as codeatlas_telemetry
from codeatlas.errors import NotFoundError
from fixtures.data import chunk, unit_rows
from fixtures.telemetry import Telemetry


def scalar_attributes(span: object) -> dict[str, object]:
    attributes = dict(span.attributes or {})  # type: ignore[attr-defined]
    for value in attributes.values():
        assert isinstance(value, str | int | float | bool)  # never a vector or a list
    return attributes


async def test_a_search_span_follows_the_database_conventions(
    atlas: codeatlas.Atlas, telemetry: Telemetry, migrated_dsn: str
) -> None:
    vectors = unit_rows(30, 1536, seed=1)
    await atlas.vector_search.insert_many(
        [chunk("a", i, v, content=f"secret content {i}") for i, v in enumerate(vectors)]
    )
    telemetry.spans.clear()
    hits = await atlas.vector_search.search_similar(vectors[2], 5, probes=7)
    assert len(hits) == 5
    [span] = telemetry.finished("search_similar vector_search")
    attributes = scalar_attributes(span)
    database = migrated_dsn.split("?")[0].rsplit("/", 1)[1]
    assert attributes["db.system.name"] == "postgresql"
    assert attributes["db.operation.name"] == "search_similar"
    assert attributes["db.collection.name"] == "vector_search"
    assert attributes["db.namespace"] == database
    assert attributes["codeatlas.k"] == 5
    assert attributes["codeatlas.probes"] == 7
    assert attributes["codeatlas.rows"] == 5
    assert attributes["codeatlas.pool"] == "primary"
    assert span.kind.name == "CLIENT"
    assert span.status.status_code.name == "UNSET"
    text = repr(attributes)
    assert "secret content" not in text and str(float(vectors[2][0]))[:8] not in text


async def test_cache_hits_and_misses_are_attributes(
    atlas: codeatlas.Atlas, telemetry: Telemetry
) -> None:
    vectors = unit_rows(20, 1536, seed=2)
    await atlas.vector_search.insert_many(
        [chunk("a", i, v, content=f"secret content {i}") for i, v in enumerate(vectors)]
    )
    question = unit_rows(1, 768, seed=3)[0]
    await atlas.semantic_cache.store("q?", question, "a.", model="m")
    telemetry.spans.clear()
    for _ in range(2):
        await atlas.vector_search.search_similar(vectors[1], 3, cache=True)
    await atlas.semantic_cache.lookup(question, 0.99)
    await atlas.semantic_cache.lookup(-question, 0.99)
    searches = telemetry.finished("search_similar vector_search")
    assert [s.attributes["codeatlas.cache.hit"] for s in searches] == [False, True]
    lookups = telemetry.finished("lookup semantic_cache")
    assert [s.attributes["codeatlas.cache.hit"] for s in lookups] == [True, False]
    assert [s.attributes["codeatlas.rows"] for s in lookups] == [1, 0]
    # a cache hit re-reads its rows: a child span of the search
    [hit] = [s for s in searches if s.attributes["codeatlas.cache.hit"]]
    children = [
        s for s in telemetry.finished() if s.parent and s.parent.span_id == hit.context.span_id
    ]
    assert "get_many vector_search" in {child.name for child in children}


async def test_errors_are_recorded_with_their_codeatlas_type_only(
    atlas: codeatlas.Atlas, telemetry: Telemetry
) -> None:
    with pytest.raises(NotFoundError):
        await atlas.vector_search.get(987654321)
    [span] = telemetry.finished("get vector_search")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "NotFoundError"
    [event] = span.events
    assert dict(event.attributes) == {"exception.type": "NotFoundError"}
    assert "987654321" not in repr(span.attributes) + repr(span.status.description)


async def test_writes_and_reads_make_spans_and_searches_feed_the_histogram(
    atlas: codeatlas.Atlas, telemetry: Telemetry
) -> None:
    vectors = unit_rows(10, 1536, seed=4)
    count = await atlas.vector_search.insert_many(
        [chunk("h", i, v, content=f"secret content {i}") for i, v in enumerate(vectors)]
    )
    page = await atlas.vector_search.list(limit=4)
    for vector in vectors[:3]:
        await atlas.vector_search.search_similar(vector, 2)
    names = [span.name for span in telemetry.finished()]
    assert "insert_many vector_search" in names and "list vector_search" in names
    assert count == 10 and telemetry.finished("list vector_search")[0].attributes[
        "codeatlas.rows"
    ] == len(page.items)
    data = telemetry.metrics.get_metrics_data()
    points = [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "codeatlas.search.duration"
        for point in metric.data.data_points
        if point.attributes.get("db.collection.name") == "vector_search"
    ]
    assert points and sum(point.count for point in points) >= 3
    assert all(point.sum > 0 for point in points)


def test_without_opentelemetry_nothing_is_wrapped_or_imported() -> None:
    # a fresh interpreter where opentelemetry cannot be imported
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "import codeatlas\n"
        "from codeatlas import telemetry\n"
        "from codeatlas.repositories.vector_search import VectorSearchRepository as R\n"
        "original = R.search_similar\n"
        "assert telemetry.instrument() is False\n"
        "assert R.search_similar is original and not telemetry.instrumented()\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "['opentelemetry']"  # only the blocker


def test_no_span_is_made_until_a_tracer_provider_is_configured(migrated_dsn: str) -> None:
    # a fresh interpreter with the OpenTelemetry API and SDK but no provider set at first
    code = (
        "import asyncio, sys\n"
        "import codeatlas\n"
        "from codeatlas import telemetry\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import "
        "InMemorySpanExporter\n"
        "async def main():\n"
        "    async with codeatlas.connect(sys.argv[1], migrate=False) as atlas:\n"
        "        assert telemetry.instrumented()\n"
        "        tracer, telemetry._tracer = telemetry._tracer, None  # a span would fail\n"
        "        await atlas.vector_search.count()\n"
        "        telemetry._tracer = tracer\n"
        "        exporter = InMemorySpanExporter()\n"
        "        provider = TracerProvider()\n"
        "        provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "        trace.set_tracer_provider(provider)  # configured after connect()\n"
        "        await atlas.vector_search.count()\n"
        "        print([span.name for span in exporter.get_finished_spans()])\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, migrated_dsn],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "['count vector_search']"


def test_uninstrument_puts_the_methods_back() -> None:
    from codeatlas.repositories.vector_search import VectorSearchRepository

    assert codeatlas_telemetry.instrument()
    wrapped = VectorSearchRepository.search_similar
    assert wrapped.__wrapped__ is not None  # type: ignore[attr-defined]
    codeatlas_telemetry.uninstrument()
    try:
        assert not hasattr(VectorSearchRepository.search_similar, "__wrapped__")
    finally:
        assert codeatlas_telemetry.instrument()
