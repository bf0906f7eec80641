"""Stage 3, parse/analyse: measure, analyse and chunk files, in worker processes if asked.

A file never fails the stage: an exception while analysing it (including RecursionError on
pathological nesting) skips it with the reason, and a worker process that dies (a C stack
overflow in the parser, the OOM killer) is replaced and its files retried one per task, so
only the file that kills a worker again is skipped.

Workers start with SIGINT blocked: Ctrl-C in a terminal reaches the whole process group,
and only the parent should act on it (cancel the run, shut the pool down); a worker
interrupted mid-import would print a traceback and break the pool.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Final

from ..analysis.scan import FileAnalysis, SourceFile, analyse_file
from .report import SkippedFile

__all__ = ["Parsed", "analyse_one", "parse"]

_BATCH: Final = 8


@dataclass(frozen=True, slots=True)
class Parsed:
    """The analyses of the files that could be analysed (in input order), and the rest."""

    analyses: tuple[FileAnalysis, ...]
    skipped: tuple[SkippedFile, ...]


def analyse_one(source: SourceFile, module_prefix: str) -> FileAnalysis | SkippedFile:
    """Return the analysis of *source*, or why it is skipped (unreadable, binary, failed)."""
    try:
        analysis = analyse_file(source, module_prefix=module_prefix)
    except (Exception, RecursionError) as exc:
        return SkippedFile(source.path, f"analysis failed: {type(exc).__name__}: {exc}"[:300])
    if analysis.error is not None:
        return SkippedFile(source.path, f"unreadable: {analysis.error}"[:300])
    if analysis.binary:
        return SkippedFile(source.path, "binary content (NUL bytes in its first 8 KiB)")
    return analysis


def _analyse_batch(
    files: Sequence[SourceFile], module_prefix: str
) -> list[FileAnalysis | SkippedFile]:
    """Analyse several files in a worker process (fewer round trips than one per file)."""
    return [analyse_one(f, module_prefix) for f in files]


async def parse(
    files: Sequence[SourceFile],
    *,
    module_prefix: str,
    workers: int,
    on_progress: Callable[[int], None] | None = None,
) -> Parsed:
    """Analyse *files*: in this process when *workers* <= 1, else in that many processes.

    *on_progress(done)* runs as files complete.
    """
    results: dict[str, FileAnalysis | SkippedFile] = {}

    def record(done: Sequence[FileAnalysis | SkippedFile]) -> None:
        for item in done:
            results[item.path] = item
        if on_progress is not None:
            on_progress(len(results))

    if workers <= 1 or len(files) <= _BATCH:
        for i, f in enumerate(files):
            record([analyse_one(f, module_prefix)])
            if i % 16 == 15:
                await asyncio.sleep(0)  # let the loop breathe (progress, cancellation)
    else:
        try:
            await _in_processes(list(files), module_prefix, workers, record)
        except OSError:
            # no worker processes to be had (process or memory limits): parse what is left
            # here rather than fail the run
            for f in files:
                if f.path not in results:
                    record([analyse_one(f, module_prefix)])
                    await asyncio.sleep(0)
    analyses = tuple(r for f in files if isinstance(r := results[f.path], FileAnalysis))
    skipped = tuple(r for f in files if isinstance(r := results[f.path], SkippedFile))
    return Parsed(analyses, skipped)


async def _in_processes(
    files: list[SourceFile],
    module_prefix: str,
    workers: int,
    record: Callable[[Sequence[FileAnalysis | SkippedFile]], None],
) -> None:
    loop = asyncio.get_running_loop()
    pending = [files[i : i + _BATCH] for i in range(0, len(files), _BATCH)]
    suspects: list[SourceFile] = []
    # spawn: forking a process that runs an event loop and holds sockets is unsafe
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        with _sigint_blocked():  # workers spawn as work is submitted
            futures = {
                loop.run_in_executor(pool, _analyse_batch, batch, module_prefix): batch
                for batch in pending
            }
        try:
            for future in asyncio.as_completed(futures):
                try:
                    record(await future)
                except BrokenProcessPool:
                    break
        except BaseException:  # cancelled: start no more batches, leave no result unread
            for future in futures:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    for future, batch in futures.items():
        if future.done() and not future.cancelled() and future.exception() is None:
            record(future.result())  # finished before the break, perhaps not recorded yet
        else:
            future.cancel()
            suspects.extend(batch)
    # A worker died: retry its files one per task in fresh pools, so only a file that kills
    # a worker again is skipped.
    for source in suspects:
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            try:
                with _sigint_blocked():
                    running = loop.run_in_executor(pool, analyse_one, source, module_prefix)
                result = await running
            except BrokenProcessPool:
                result = SkippedFile(source.path, "analysis crashed its worker process")
        record([result])


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread for the block: processes started in it inherit the mask.

    Blocked, not ignored: a SIGINT sent to this process meanwhile goes to another of its
    threads, or waits until the block ends, so the parent never loses a Ctrl-C.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
