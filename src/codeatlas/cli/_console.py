"""What every command shares: the consoles, the database a command targets, and the
helpers that keep output readable at 80 columns and free of secrets."""

from __future__ import annotations

import argparse
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import asyncpg
import pydantic
from rich.console import Console
from rich.markup import escape

from ..atlas import resolve_dsn
from ..config import Settings, dsn_secrets, redact_dsn
from ..errors import CodeAtlasError

__all__ = [
    "NARROW",
    "Target",
    "describe_error",
    "err",
    "human_bytes",
    "out",
    "resolve_target",
    "scrub",
    "shorten_path",
    "where",
]

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

#: Below this many columns, commands print key: value blocks instead of wide tables.
NARROW: Final = 120

_LINE_SUFFIX: Final = re.compile(r"(?::\d+){1,2}$")
_ELLIPSIS: Final = "…"


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
    """Name *target* for a message (rich markup escaped), password redacted."""
    # escaped: a DSN may hold "[...]" (an IPv6 host), which rich would read as markup
    return escape(f"{'embedded server ' if target.embedded else ''}{redact_dsn(target.dsn)}")


def shorten_path(text: str, width: int) -> str:
    """Return *text* shortened from the left to at most *width* characters.

    Signature: ``shorten_path(text: str, width: int) -> str``. *text* is a path, optionally
    followed by ``:line`` or ``:line:column``; that suffix always survives, then as much of
    the path's end as fits. The cut is marked with ``…`` and moved to the next ``/`` when
    that costs only a few characters: ``src/codeatlas/repositories/graph.py:120`` becomes
    ``…/repositories/graph.py:120`` at width 30 and ``…positories/graph.py:120`` at 24.
    Text that fits is returned unchanged; the result is never longer than *width*.
    """
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    match = _LINE_SUFFIX.search(text)
    suffix = match.group() if match else ""
    path = text[: len(text) - len(suffix)]
    budget = width - len(suffix) - len(_ELLIPSIS)
    if budget <= 0:
        return (_ELLIPSIS + suffix)[-width:]
    tail = path[-budget:]
    slash = tail.find("/")
    if 0 <= slash < max(4, budget // 4):
        # a cut at a directory boundary reads better, unless it wastes much of the width
        tail = tail[slash:]
    return _ELLIPSIS + tail + suffix


def human_bytes(size: int) -> str:
    """Return *size* as ``846.2 MiB`` (binary units)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def scrub(text: str, dsns: Iterable[str | None]) -> str:
    """Replace in *text* anything secret the *dsns* hold (a last line of defence)."""
    for dsn in dsns:
        if dsn:
            for secret in dsn_secrets(dsn):
                text = text.replace(secret, "***")
    return text


def describe_error(exc: BaseException, dsn: str | None = None) -> str:
    """Say in words what *exc* means (never just its class name); *dsn* names the server."""
    if isinstance(exc, CodeAtlasError):
        return str(exc)
    if isinstance(exc, pydantic.ValidationError):
        # names and reasons only: an input value could be a secret
        problems = "; ".join(
            f"CODEATLAS_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        return f"invalid setting: {problems}"
    server = _server_address(dsn)
    if isinstance(exc, socket.gaierror):
        host = server.rsplit(":", 1)[0] if server else "the server's host"
        return f"host not found: {host} (DNS: {exc.strerror or 'no address'})"
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing listens on {server or 'the server address'} (connection refused)"
    if isinstance(exc, TimeoutError):
        return f"no answer from {server or 'the server'} in time"
    if isinstance(exc, ConnectionError):
        return f"the connection to {server or 'the server'} broke ({exc.strerror or 'reset'})"
    if isinstance(exc, OSError):
        reason = exc.strerror or (exc.args[0] if exc.args else "operating system error")
        return f"{reason}: {exc.filename}" if exc.filename else str(reason)
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None)
        return f"the server refused: {_first_line(exc)} (SQLSTATE {sqlstate})"
    if isinstance(exc, asyncpg.InterfaceError):
        return f"database client problem: {_first_line(exc)}"
    return f"unexpected {type(exc).__name__}: {_first_line(exc)} (a bug: please report it)"


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else ""
    return text.splitlines()[0] if text else "no details"


def _server_address(dsn: str | None) -> str:
    """Return ``host:port`` of a URL *dsn* ("" when unknown), from its redacted form."""
    if not dsn:
        return ""
    try:
        parts = urlsplit(redact_dsn(dsn))
        host = parts.netloc.rsplit("@", 1)[-1]
    except ValueError:
        return ""
    if not host or host.startswith("<"):
        return ""
    return host if ":" in host or "," in host else f"{host}:{os.environ.get('PGPORT', '5432')}"
