"""Report sections for index strategies, the semantic cache per index kind, bulk loads and
the embedded server's settings (rendered from the results dict, like report.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from . import provenance

__all__ = [
    "bulk_section",
    "cache_reading",
    "semantic_section",
    "settings_section",
    "speed_reading",
    "strategies_plots",
    "strategies_section",
]

TARGET: Final = 0.95
SPEEDUP_GOAL: Final = 5.0
CACHE_GOAL: Final = 1.5
_PLAIN: Final = FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:.2g}")
_COLOURS: Final = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
#: keys of a settings measurement that are not search timings
_NOT_TIMINGS: Final = frozenset({"settings", "index_kinds"})


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def strategies_plots(results: dict[str, Any], images: Path) -> list[Path]:
    """Draw recall@10 against QPS per strategy (c=1, c=8, shifted queries) per dimension."""
    written = []
    for dim, bench in sorted(results.get("strategies", {}).items(), key=lambda i: int(i[0])):
        panels = (
            ("c1", "held-out queries, 1 client"),
            ("c8", "held-out queries, 8 clients"),
            ("shifted_c1", "shifted-centre queries, 1 client"),
        )
        figure, axes = plt.subplots(1, len(panels), figsize=(5.4 * len(panels), 4.8))
        for axis, (key, title) in zip(axes, panels, strict=True):
            for colour, strategy in zip(_COLOURS, bench["strategies"], strict=False):
                points = strategy["points"]
                axis.plot(
                    [p[key]["recall"] for p in points],
                    [p[key]["qps"] for p in points],
                    marker="o",
                    markersize=4,
                    color=colour,
                    label=f"{strategy['label']} ({strategy['knob']})",
                )
                for point in points:
                    if point["tuned"]:
                        axis.plot(
                            point[key]["recall"],
                            point[key]["qps"],
                            marker="*",
                            markersize=13,
                            color=colour,
                            markeredgecolor="black",
                        )
            axis.axvline(TARGET, color="grey", linestyle=":", linewidth=1)
            axis.set_yscale("log")
            axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.yaxis.set_major_formatter(_PLAIN)
            axis.yaxis.set_minor_formatter(NullFormatter())
            axis.set_xlabel("recall@10 (higher is better)")
            axis.set_ylabel("queries per second, log scale")
            axis.set_title(title)
            axis.grid(True, which="both", alpha=0.3)
        axes[0].legend(loc="lower left", fontsize=7)
        figure.suptitle(
            f"{bench['table']}: {int(dim)} dims, {bench['rows']:,} rows; a line per strategy, "
            "a point per knob value, the star is the value tune chose"
        )
        figure.tight_layout()
        path = images / f"strategies_{int(dim)}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written


def strategies_section(results: dict[str, Any]) -> str:
    """Return the Markdown of the strategies benchmark (tables per dimension)."""
    out = []
    several = len(provenance.runs(results)) > 1
    for dim, bench in sorted(results.get("strategies", {}).items(), key=lambda i: int(i[0])):
        number = provenance.source(results, f"strategies/{dim}")
        source = f" (run {number})" if several and number is not None else ""
        out += [
            f"### {int(dim)} dimensions: `{bench['table']}`, {bench['rows']:,} rows{source}",
            "",
            f"Each strategy tuned by `atlas.indexes.tune(target_recall=0.95, queries=...)` on "
            "200 fresh draws of the mixture (its choice is marked *tuned*); "
            f"{bench['queries']} held-out queries per point, and as many drawn around shifted "
            "cluster centres. Speed-ups are against IVFFlat lists=100 at the cheapest swept "
            "point whose held-out recall@10 is at least 0.95.",
            "",
        ]
        rows = []
        for strategy in bench["strategies"]:
            ratio = bench["ratios"][strategy["label"]]
            params = ", ".join(f"{k}={v}" for k, v in strategy["params"].items())
            rows.append(
                (
                    f"{strategy['label']} ({params})",
                    f"{strategy['build_s']:.1f}",
                    f"{strategy['index_bytes'] / 1e6:.0f}",
                    f"{strategy['knob']}={strategy['tuned']}",
                    f"{ratio['tuned_recall_held_out']:.3f}",
                    f"{ratio['tuned_recall_shifted']:.3f}",
                    _ms(ratio["tuned_p50_ms"]),
                    _x(ratio["tuned_speedup_p50_c1"]),
                    "-" if ratio["value_at_target"] is None else str(ratio["value_at_target"]),
                    _ms(ratio["p50_ms_at_target"]),
                    _x(ratio["speedup_p50_c1"]),
                    _x(ratio["speedup_qps_c8"]),
                )
            )
        out += [
            _table(
                [
                    "strategy",
                    "build s",
                    "index MB",
                    "tuned",
                    "recall (held-out)",
                    "recall (shifted)",
                    "p50 ms",
                    "p50 speed-up",
                    "cheapest at 0.95",
                    "p50 ms",
                    "p50 speed-up",
                    "QPS c=8 speed-up",
                ],
                rows,
            ),
            "",
            "Every point swept (recall@10 / p50 ms / QPS; c=8 QPS; shifted-query recall):",
            "",
        ]
        detail = []
        for strategy in bench["strategies"]:
            for point in strategy["points"]:
                detail.append(
                    (
                        strategy["label"],
                        f"{strategy['knob']}={point['value']}"
                        + (" (tuned)" if point["tuned"] else ""),
                        f"{point['c1']['recall']:.3f}",
                        _ms(point["c1"]["p50_ms"]),
                        f"{point['c1']['qps']:.0f}",
                        f"{point['c8']['qps']:.0f}",
                        f"{point['shifted_c1']['recall']:.3f}",
                    )
                )
        out += [
            _table(
                ["strategy", "knob", "recall", "p50 ms", "QPS c=1", "QPS c=8", "recall (shifted)"],
                detail,
            ),
            "",
            f"![recall against QPS per strategy, {int(dim)} dims](img/strategies_{int(dim)}.png)",
            "",
        ]
    return "\n".join(out)


def _cache_runs(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    semantic = results.get("caches", {}).get("semantic") or {}
    if "entries" in semantic:  # a report of the earlier, single-size layout
        return []
    return sorted(semantic.items(), key=lambda item: int(item[0]))


def semantic_section(results: dict[str, Any]) -> str:
    """Return the Markdown of the semantic cache lookups per size and index kind."""
    rows = []
    notes = []
    for entries, run in _cache_runs(results):
        for kind, figures in run["kinds"].items():
            raw = figures["raw_nearest"]["p50_ms"]
            hit = figures["lookup_hit"]["p50_ms"]
            miss = figures["lookup_miss"]["p50_ms"]
            rows.append(
                (
                    f"{int(entries):,}",
                    kind,
                    f"{figures['knob']}={figures['tuned']}",
                    f"{figures['build_s']:.1f}",
                    _ms(hit),
                    _ms(miss),
                    _ms(raw),
                    f"{hit / raw:.2f}x",
                    f"{miss / raw:.2f}x",
                    f"{figures['hits_not_found']}/{figures['misses_answered']}",
                )
            )
        notes.append(
            f"{int(entries):,} entries bulk-loaded in {run['load_s']:.1f} s; `store` p50 "
            f"{_ms(run['store']['p50_ms'])} ms."
        )
    if not rows:
        return ""
    return "\n".join(
        [
            "Semantic cache (`atlas.semantic_cache.lookup`, 768 dims, threshold 0.95), one "
            "client; hits are near-duplicates of stored questions (similarity 0.98), misses "
            "unrelated questions. *Raw* is the single-row index query (`ORDER BY <=> LIMIT 1` "
            "on raw asyncpg, the same knobs as startup settings, no threshold, no counter "
            "update). A lookup is one statement on the pool (its knobs set inline); a miss "
            "costs that statement plus the pool's acquire and release. A hit also bumps "
            "`hit_count` and `last_accessed`, which the Elixir schema indexes, so the update is "
            "never HOT: it writes a new row version into every index of the table, the vector "
            "index included (on HNSW, a graph insertion), which is what a hit costs over a miss.",
            "",
            _table(
                [
                    "entries",
                    "index",
                    "tuned",
                    "build s",
                    "hit p50 ms",
                    "miss p50 ms",
                    "raw p50 ms",
                    "hit / raw",
                    "miss / raw",
                    "wrong hits / answered misses",
                ],
                rows,
            ),
            "",
            " ".join(notes),
            "",
        ]
    )


def bulk_section(results: dict[str, Any]) -> str:
    """Return the Markdown of the bulk-load comparison."""
    bulk = results.get("bulk_load")
    if not bulk:
        return ""
    rows = [
        (
            name,
            f"{figures['load_s']:.1f}",
            f"{figures['build_s']:.1f}",
            f"{figures['total_s']:.1f}",
            f"{bulk['rows'] / figures['load_s']:,.0f}",
        )
        for name, figures in (
            ("insert_many with the index in place, then rebuild", bulk["index_in_place"]),
            ("`atlas.indexes.bulk_load`: index dropped, COPY, build", bulk["bulk_load"]),
        )
    ]
    return "\n".join(
        [
            f"{bulk['rows']:,} rows into `{bulk['table']}` (binary COPY in chunks of 10,000), "
            "then an IVFFlat index for them (lists=rows/1000):",
            "",
            _table(["path", "load s", "index build s", "total s", "rows/s loading"], rows),
            "",
        ]
    )


def settings_section(results: dict[str, Any]) -> str:
    """Return the Markdown of the sized-settings comparison."""
    effect = results.get("server_settings")
    if not effect:
        return ""
    sized, defaults = effect["sized"], effect["defaults"]
    names = list(sized["settings"])
    rows = [(name, sized["settings"][name], defaults["settings"][name]) for name in names]
    kinds = sized.get("index_kinds", {})
    searches = []
    for key in sorted(k for k in sized if k not in _NOT_TIMINGS):
        dim, label = key.split("_", 1)
        index = f"index ({kinds[dim]}, tuned)" if dim in kinds else "index (tuned)"
        searches.append(
            (
                f"{dim} dims, {index if label == 'index' else 'exact scan'}",
                _ms(sized[key]["p50_ms"]),
                _ms(defaults[key]["p50_ms"]),
                f"{defaults[key]['p50_ms'] / sized[key]['p50_ms']:.2f}x",
            )
        )
    dims = sorted({key.split("_", 1)[0] for key in sized if key not in _NOT_TIMINGS}, key=int)
    number = provenance.source(results, "server_settings")
    several = len(provenance.runs(results)) > 1
    source = f"Measured in run {number}: the e" if several and number is not None else "The e"
    tables = " and ".join(f"{dim}-dim" for dim in dims)
    rows_text = f"{effect['rows']:,} rows, " if "rows" in effect else ""
    return "\n".join(
        [
            f"{source}mbedded server as codeatlas now starts it (sized for the machine: "
            "`codeatlas._server.server_settings`) against PostgreSQL's defaults, on the "
            f"{tables} table{'s' if len(dims) > 1 else ''} the run had loaded ({rows_text}"
            "each with HNSW at its tuned knob"
            + (
                ", the last index the strategies benchmark built"
                if not effect.get("loaded_for_it")
                else "; for a table the run did not benchmark, see the note below the tables"
            )
            + f"), {effect['queries']} held-out queries each, one client, after a restart:",
            "",
            _table(["setting", "sized", "PostgreSQL default"], rows),
            "",
            _table(["search p50", "sized ms", "defaults ms", "defaults / sized"], searches),
            "",
            "The two halves run one after the other (sized, then the defaults after a restart), "
            "not interleaved like the search sweep, on a few queries each: a change in the "
            "machine's load between them moves these ratios, so read them as rough.",
            "",
            *(
                [
                    " ".join(
                        f"The {dim}-dim table was not benchmarked in this run: it was loaded "
                        f"for this comparison alone ({extra['rows']:,} rows, the same data), "
                        f"with {extra['kind']} ("
                        + ", ".join(f"{k}={v}" for k, v in extra["params"].items())
                        + f", built in {extra['build_s']:.0f} s) tuned to "
                        f"{extra['knob']}={extra['tuned']} on 200 fresh draws of the mixture."
                        for dim, extra in sorted(
                            effect["loaded_for_it"].items(), key=lambda i: int(i[0])
                        )
                    ),
                    "",
                ]
                if effect.get("loaded_for_it")
                else []
            ),
        ]
    )


def speed_reading(results: dict[str, Any]) -> list[str]:
    """Return the reading's bullets for strategies, caches and bulk loads."""
    notes = []
    for dim, bench in sorted(results.get("strategies", {}).items(), key=lambda i: int(i[0])):
        best = max(
            (r for r in bench["ratios"].items() if r[1]["speedup_p50_c1"] is not None),
            key=lambda r: r[1]["speedup_p50_c1"],
            default=None,
        )
        if best is None:
            notes.append(f"* **Strategies, {int(dim)} dims.** No strategy reached recall 0.95.")
            continue
        label, ratio = best
        met = "meets" if ratio["speedup_p50_c1"] >= SPEEDUP_GOAL else "**misses**"
        base = bench["ratios"]["ivfflat lists=100"]
        others = sorted(
            (
                (r["speedup_p50_c1"], name)
                for name, r in bench["ratios"].items()
                if r["speedup_p50_c1"] is not None and name not in (label, "ivfflat lists=100")
            ),
            reverse=True,
        )
        tuned = "; ".join(
            f"{s['label']} {s['knob']}={s['tuned']}: "
            f"{bench['ratios'][s['label']]['tuned_recall_held_out']:.3f} / "
            f"{bench['ratios'][s['label']]['tuned_recall_shifted']:.3f}"
            for s in bench["strategies"]
        )
        notes.append(
            f"* **Strategies, {int(dim)} dims, {bench['rows']:,} rows.** At recall@10 >= 0.95 "
            f"on held-out queries the fastest is {label} at p50 "
            f"{_ms(ratio['p50_ms_at_target'])} ms: {_x(ratio['speedup_p50_c1'])} faster than "
            f"IVFFlat lists=100 ({_ms(base['p50_ms_at_target'])} ms at probes="
            f"{base['value_at_target']}; {met} the {SPEEDUP_GOAL:.0f}x goal), "
            f"{_x(ratio['speedup_qps_c8'])} its QPS at 8 clients"
            + (
                "; then " + ", ".join(f"{name} {_x(speed)}" for speed, name in others)
                if others
                else ""
            )
            + f". Recall@10 at the point tune chose, held-out / shifted-centre queries: {tuned}."
        )
    for entries, run in _cache_runs(results):
        parts = []
        for kind, figures in run["kinds"].items():
            raw = figures["raw_nearest"]["p50_ms"]
            worst = max(figures["lookup_hit"]["p50_ms"], figures["lookup_miss"]["p50_ms"]) / raw
            met = "within" if worst <= CACHE_GOAL else "**outside**"
            parts.append(
                f"{kind}: hit {_ms(figures['lookup_hit']['p50_ms'])} ms, miss "
                f"{_ms(figures['lookup_miss']['p50_ms'])} ms against {_ms(raw)} ms raw "
                f"({worst:.2f}x, {met} the {CACHE_GOAL}x goal)"
            )
        notes.append(
            f"* **Semantic cache, {int(entries):,} entries.** Lookup p50 " + "; ".join(parts) + "."
        )
    bulk = results.get("bulk_load")
    if bulk:
        before, after = bulk["index_in_place"]["total_s"], bulk["bulk_load"]["total_s"]
        notes.append(
            f"* **Bulk load.** {bulk['rows']:,} rows plus their index: {after:.1f} s through "
            f"`bulk_load` against {before:.1f} s loading with the index in place "
            f"({before / after:.1f}x)."
        )
    effect = results.get("server_settings")
    if effect:
        keys = sorted(k for k in effect["sized"] if k not in _NOT_TIMINGS)
        parts = [
            f"{key.replace('_', ' dims, ')} "
            f"{effect['defaults'][key]['p50_ms'] / effect['sized'][key]['p50_ms']:.2f}x"
            for key in keys
        ]
        notes.append(
            "* **Embedded server settings.** p50 with PostgreSQL's defaults over p50 with the "
            "sized settings: " + ", ".join(parts) + "."
        )
    return notes


def cache_reading(results: dict[str, Any]) -> bool:
    """True when the results hold the per-size semantic cache layout."""
    return bool(_cache_runs(results))
