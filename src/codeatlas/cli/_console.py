"""What every command shares: the consoles and the database a command targets."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from rich.console import Console

from ..atlas import resolve_dsn
from ..config import Settings, redact_dsn

__all__ = ["Target", "err", "out", "resolve_target", "where"]

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@dataclass(frozen=True, slots=True)
class Target:
    """The server a command works on: its DSN (never printed unredacted) and settings."""

    dsn: str
    settings: Settings
    embedded: bool


async def resolve_target(args: argparse.Namespace) -> Target:
    """Resolve ``--dsn`` (else ``CODEATLAS_DSN``, else the embedded server)."""
    settings = Settings()
    dsn, server = await resolve_dsn(args.dsn, settings)
    return Target(dsn, settings, server is not None)


def where(target: Target) -> str:
    """Name *target* for a message, password redacted."""
    return f"{'embedded server ' if target.embedded else ''}{redact_dsn(target.dsn)}"
