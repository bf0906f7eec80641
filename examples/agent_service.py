"""An agent worker service on codeatlas: claim merges, perform them, record what happened.

Each worker opens a git agent session, then loops: claim the oldest free merge
(``atlas.git.claim_next_merge``), evaluate the merge-gate rule on it and record that
execution (``atlas.rules.record_execution``), "perform" the merge (simulated: a short sleep
and an outcome derived from the branch name), then, in one transaction, move the merge into
history (``atlas.git.record_merge_outcome``) and record the rule execution's outcome. The
first SIGINT/SIGTERM lets every worker finish its merge in flight and close its session; a
second one cancels, giving claims back to the queue.

Run it (``CODEATLAS_DSN`` selects the server; unset, the embedded one is used)::

    python examples/agent_service.py --enqueue 20 --exit-when-idle
    AGENT_WORKERS=8 CODEATLAS_DSN=postgresql://agent@db/atlas python examples/agent_service.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

import codeatlas
from codeatlas.errors import CodeAtlasError, StateConflictError
from codeatlas.models import (
    ExecutionDecision,
    ExecutionOutcome,
    GitPendingMerge,
    MergeStatus,
    RuleCreate,
)

logger = logging.getLogger("agent_service")

#: The rule every merge is checked against before it is performed.
RULE_NAME = "merge-gate"
#: Below this confidence the gate asks for a second opinion instead of merging alone.
AUTONOMY_THRESHOLD = 0.8


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """What the service is tuned by; ``from_env`` reads it from ``AGENT_*`` variables."""

    workers: int = 3
    agent_name: str = "merge-agent"
    workspace: str = "/tmp/codeatlas-agents"
    #: how long a claim lasts; a crashed worker's merge is claimable again after it
    lease: timedelta = timedelta(minutes=5)
    #: seconds an idle worker waits before looking at the queue again
    poll_interval: float = 1.0
    #: seconds a simulated merge takes
    merge_seconds: float = 0.05
    #: stop each worker when it finds the queue empty (batch mode) instead of polling
    exit_when_idle: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ServiceConfig:
        """Return the configuration from ``AGENT_*`` environment variables (defaults above)."""
        defaults = cls()
        return cls(
            workers=int(environ.get("AGENT_WORKERS", defaults.workers)),
            agent_name=environ.get("AGENT_NAME", defaults.agent_name),
            workspace=environ.get("AGENT_WORKSPACE", defaults.workspace),
            lease=timedelta(
                seconds=float(environ.get("AGENT_LEASE_SECONDS", defaults.lease.total_seconds()))
            ),
            poll_interval=float(environ.get("AGENT_POLL_SECONDS", defaults.poll_interval)),
            merge_seconds=float(environ.get("AGENT_MERGE_SECONDS", defaults.merge_seconds)),
            exit_when_idle=environ.get("AGENT_EXIT_WHEN_IDLE", "") in {"1", "true", "yes"},
        )


@dataclass(slots=True)
class ServiceReport:
    """What a run did: merges per worker and outcomes per status."""

    merges: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    lost_claims: int = 0

    @property
    def total(self) -> int:
        """Return how many merges this run recorded."""
        return sum(self.merges.values())


@dataclass(frozen=True, slots=True)
class MergeResult:
    """The outcome of one (simulated) merge."""

    status: MergeStatus
    merge_commit: str | None
    conflicting_files: list[str]


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode()).digest()


def gate_confidence(branch: str) -> float:
    """Return the merge-gate rule's confidence for *branch* (deterministic, 0.5..1.0)."""
    return 0.5 + _digest("gate", branch)[0] / 510


def simulate_merge(branch: str, worker_id: str) -> MergeResult:
    """Return what merging *branch* does: about one branch in eight conflicts."""
    if _digest("merge", branch)[0] % 8 == 0:
        return MergeResult(MergeStatus.CONFLICT, None, [f"src/{branch.rsplit('/', 1)[-1]}.py"])
    commit = _digest("commit", branch, worker_id).hex()[:40]
    return MergeResult(MergeStatus.MERGED, commit, [])


async def ensure_rule(atlas: codeatlas.Atlas) -> UUID:
    """Return the id of the merge-gate rule, creating it on first use."""
    page = await atlas.rules.list({"name": RULE_NAME}, limit=1)
    if page.items:
        return page.items[0].id
    rule = await atlas.rules.insert(
        RuleCreate(
            name=RULE_NAME,
            category="git",
            description="merge alone when confident, otherwise ask another agent",
            condition={"confidence_at_least": AUTONOMY_THRESHOLD},
            action={"merge": True},
        )
    )
    return rule.id


class AgentService:
    """Workers that drain the merge queue of one codeatlas database."""

    def __init__(self, atlas: codeatlas.Atlas, config: ServiceConfig, rule_id: UUID) -> None:
        self.atlas = atlas
        self.config = config
        self.rule_id = rule_id
        self.report = ServiceReport()

    async def run(self, stop: asyncio.Event) -> ServiceReport:
        """Run the workers until *stop* is set (or, in batch mode, the queue is empty)."""
        async with asyncio.TaskGroup() as group:
            for n in range(1, self.config.workers + 1):
                group.create_task(self.worker(f"{self.config.agent_name}-{n}", stop))
        return self.report

    async def worker(self, worker_id: str, stop: asyncio.Event) -> None:
        """Claim and perform merges one at a time, inside this worker's agent session."""
        git = self.atlas.git
        await git.open_session(worker_id, f"{self.config.workspace}/{worker_id}")
        logger.info("%s: session open", worker_id)
        try:
            while not stop.is_set():
                try:
                    merge = await git.claim_next_merge(worker_id, lease=self.config.lease)
                except CodeAtlasError as exc:
                    if not exc.retryable:
                        raise
                    # e.g. the server restarted: the pool replaces the connection
                    logger.warning("%s: %s; retrying", worker_id, exc)
                    await _sleep_unless(stop, self.config.poll_interval)
                    continue
                if merge is None:
                    if self.config.exit_when_idle:
                        break
                    await _sleep_unless(stop, self.config.poll_interval)
                    continue
                await self.handle(worker_id, merge)
        finally:
            # shielded: a cancelled worker still closes its session on the way out
            with contextlib.suppress(CodeAtlasError):
                await asyncio.shield(git.close_session(worker_id))
            logger.info("%s: session closed", worker_id)

    async def handle(self, worker_id: str, merge: GitPendingMerge) -> None:
        """Gate, perform and record one claimed merge."""
        started = time.perf_counter()
        confidence = gate_confidence(merge.branch)
        decision = (
            ExecutionDecision.AUTONOMOUS
            if confidence >= AUTONOMY_THRESHOLD
            else ExecutionDecision.COLLABORATIVE
        )
        execution = await self.atlas.rules.record_execution(
            self.rule_id,
            decision=decision,
            confidence=confidence,
            execution_time_ms=int((time.perf_counter() - started) * 1000),
            reasoning=f"gate on {merge.branch}",
            context={"merge_id": merge.id, "branch": merge.branch, "worker": worker_id},
        )
        try:
            await self.atlas.git.update_session(worker_id, branch=merge.branch)
            await asyncio.sleep(self.config.merge_seconds)  # the merge itself, simulated
            result = simulate_merge(merge.branch, worker_id)
        except asyncio.CancelledError:
            # hard stop mid-merge: give the claim back so another worker takes it now,
            # not when the lease runs out
            with contextlib.suppress(CodeAtlasError):
                await asyncio.shield(self.atlas.git.release(merge.id, worker_id))
            raise
        merged = result.status is MergeStatus.MERGED
        outcome = ExecutionOutcome.SUCCESS if merged else ExecutionOutcome.FAILURE
        try:
            # the merge's history row and the rule's outcome land together or not at all
            async with self.atlas.transaction() as tx:
                await tx.git.record_merge_outcome(
                    merge.id,
                    result.status,
                    merge_commit=result.merge_commit,
                    details={
                        "worker": worker_id,
                        "rule_execution_id": str(execution.id),
                        "conflicting_files": result.conflicting_files,
                        "simulated": True,
                    },
                    worker_id=worker_id,
                )
                await tx.rules.record_outcome(execution.id, outcome)
        except StateConflictError as exc:
            # the lease ran out and another worker holds the merge now: it records it
            self.report.lost_claims += 1
            logger.warning("%s: lost the claim on merge %s: %s", worker_id, merge.id, exc)
            return
        await self.atlas.git.update_session(worker_id, branch=None)
        self.report.merges[worker_id] += 1
        self.report.statuses[result.status.value] += 1
        logger.info("%s: %s %s", worker_id, merge.branch, result.status.value)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Sleep *seconds*, waking early when *stop* is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def serve(config: ServiceConfig, *, enqueue: int = 0) -> ServiceReport:
    """Connect, install the signal handlers and run the service until told to stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            logger.warning("%s again: cancelling merges in flight", signum.name)
            if main_task is not None:
                main_task.cancel()
        else:
            logger.info("%s: finishing merges in flight, then stopping", signum.name)
            stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        # no DSN here: connect() reads CODEATLAS_DSN, else starts the embedded server
        async with codeatlas.connect() as atlas:
            for n in range(enqueue):
                await atlas.git.enqueue_merge(f"demo/branch-{n:04d}", config.agent_name)
            service = AgentService(atlas, config, await ensure_rule(atlas))
            logger.info("ready: %d workers on %s", config.workers, atlas.dsn)
            report = await service.run(stop)
            stats = await atlas.rules.stats(service.rule_id, since=timedelta(hours=1))
            logger.info(
                "done: %d merges %s; gate executions in the last hour: %d, success rate %s",
                report.total,
                dict(report.statuses),
                stats.executions,
                "n/a" if stats.success_rate is None else f"{stats.success_rate:.0%}",
            )
            return report
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: list[str] | None = None) -> int:
    """Run the service from the command line; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--enqueue", type=int, default=0, help="queue N demo merges first")
    parser.add_argument(
        "--exit-when-idle", action="store_true", help="stop once the queue is empty"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = ServiceConfig.from_env()
    if args.exit_when_idle:
        config = dataclasses.replace(config, exit_when_idle=True)
    try:
        asyncio.run(serve(config, enqueue=args.enqueue))
    except asyncio.CancelledError:
        return 130
    except CodeAtlasError as exc:
        logger.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
