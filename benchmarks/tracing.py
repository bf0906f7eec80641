"""What tracing costs a search: ``python -m benchmarks.tracing``.

One embedded server (a temporary data directory), 2,000 rows of 1536-d vectors, one Atlas.
``search_similar`` (k=10, default probes) runs in rounds of 200, alternating between
uninstrumented (``telemetry.uninstrument()``: the methods as written) and instrumented
with the OpenTelemetry SDK recording every span (``SimpleSpanProcessor`` into an
in-memory exporter, the histogram into an in-memory reader), 5 rounds each; the p50 and
p90 of each mode over all its rounds are printed, with the difference.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import codeatlas
from codeatlas import telemetry
from codeatlas.models import VectorSearchCreate

ROWS = 2000
ROUND = 200
ROUNDS = 5


async def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((ROWS, 1536)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    settings = codeatlas.Settings(data_dir=Path(tempfile.mkdtemp()) / "pgdata")
    async with codeatlas.connect(settings=settings) as atlas:
        await atlas.vector_search.insert_many(
            [
                VectorSearchCreate(
                    codebase_id="bench",
                    file_path=f"f{i}.py",
                    content_type="function",
                    content="x",
                    vector_embedding=v,
                )
                for i, v in enumerate(vectors)
            ]
        )
        timings: dict[str, list[float]] = {"untraced": [], "traced": []}
        for _ in range(20):  # warm up plans and caches
            await atlas.vector_search.search_similar(vectors[0], 10)
        for _ in range(ROUNDS):
            for mode in ("untraced", "traced"):
                if mode == "traced":
                    telemetry.instrument()
                else:
                    telemetry.uninstrument()
                for i in range(ROUND):
                    started = time.perf_counter()
                    await atlas.vector_search.search_similar(vectors[i], 10)
                    timings[mode].append(time.perf_counter() - started)
                exporter.clear()
    result = {
        mode: {
            "p50_ms": round(statistics.median(values) * 1000, 3),
            "p90_ms": round(statistics.quantiles(values, n=10)[-1] * 1000, 3),
            "searches": len(values),
        }
        for mode, values in timings.items()
    }
    result["p50_overhead_ms"] = round(result["traced"]["p50_ms"] - result["untraced"]["p50_ms"], 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
