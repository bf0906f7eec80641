"""The ``codeatlas`` command, run for real: a subprocess, piped output, ``COLUMNS=80``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

import codeatlas
from codeatlas._server import data_usage, get_embedded_server
from codeatlas.cli._console import describe_error, shorten_path
from codeatlas.migrations import load_migrations
from codeatlas.migrations._engine import MIGRATION_LOCK_KEY
from fixtures.server import PgServer

#: What a table must not show at 80 columns: rich's mark for a cut cell.
CUT = "…"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


async def cli(
    *args: str, tmp_path: Path, columns: int = 80, extra_env: dict[str, str] | None = None
) -> Run:
    """Run ``python -m codeatlas.cli *args`` with piped output at *columns* columns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEATLAS_")}
    # never the per-user data directory: a test must not start (or measure) the real one
    env |= {"COLUMNS": str(columns), "CODEATLAS_DATA_DIR": str(tmp_path / "no-server")}
    env |= extra_env or {}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "codeatlas.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


def assert_one_error_line(run: Run, *fragments: str) -> None:
    assert run.code == 1, run
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.err
    assert "Traceback" not in run.err
    for fragment in fragments:
        assert fragment in lines[0]


def assert_fits(text: str, width: int = 80) -> None:
    for line in text.splitlines():
        assert len(line.rstrip()) <= width, line
    assert CUT not in text, text


async def ledger_versions(dsn: str) -> list[int]:
    connection = await asyncpg.connect(dsn)
    try:
        if not await connection.fetchval(
            "SELECT to_regclass('codeatlas_schema_migrations') IS NOT NULL"
        ):
            return []
        rows = await connection.fetch(
            "SELECT version FROM codeatlas_schema_migrations ORDER BY version"
        )
    finally:
        await connection.close()
    return [row["version"] for row in rows]


async def test_version(tmp_path: Path) -> None:
    run = await cli("--version", tmp_path=tmp_path)
    assert (run.code, run.out.strip()) == (0, f"codeatlas {codeatlas.__version__}")


async def test_status_is_readable_at_80_columns(migrated_dsn: str, tmp_path: Path) -> None:
    run = await cli("status", "--dsn", migrated_dsn, tmp_path=tmp_path)
    assert run.code == 0, run.err
    assert_fits(run.out)
    header = next(line for line in run.out.splitlines() if line.startswith("state"))
    assert header.split()[:4] == ["state", "version", "name", "applied"]
    for migration in load_migrations():
        row = next(line for line in run.out.splitlines() if str(migration.version) in line)
        assert row.split()[:3] == ["applied", str(migration.version), migration.name]
    assert run.out.strip().endswith(f"{len(load_migrations())} applied")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("migrate", "--to", "12345"), "--to: 12345 is not a migration version"),
        (("migrate", "--to", "20240101000003"), "--to: 20240101000003 is not"),
        (("rollback", "--to", "20240101000003"), "use 0 (revert all) or one of the"),
        (("rollback", "--to", "-5"), "--to: -5 is not a migration version"),
    ],
)
async def test_unknown_to_is_refused_and_changes_nothing(
    migrated_dsn: str, tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    before = await ledger_versions(migrated_dsn)
    run = await cli(*args, "--dsn", migrated_dsn, tmp_path=tmp_path)
    assert_one_error_line(run, fragment)
    assert run.out == ""
    assert await ledger_versions(migrated_dsn) == before


async def test_migrate_to_a_known_version_says_what_is_left(empty_dsn: str, tmp_path: Path) -> None:
    versions = [m.version for m in load_migrations()]
    run = await cli("migrate", "--to", str(versions[2]), "--dsn", empty_dsn, tmp_path=tmp_path)
    assert run.code == 0, run.err
    assert f"{len(versions) - 3} pending after --to {versions[2]}" in run.out.replace("\n", " ")
    assert await ledger_versions(empty_dsn) == versions[:3]


async def test_index_status_refuses_an_unknown_table(migrated_dsn: str, tmp_path: Path) -> None:
    run = await cli("index", "status", "--table", "nope", "--dsn", migrated_dsn, tmp_path=tmp_path)
    assert_one_error_line(run, "--table: 'nope' has no vector index", "rag_documents")
    assert run.out == ""


async def test_index_status_is_readable_at_80_columns(migrated_dsn: str, tmp_path: Path) -> None:
    run = await cli("index", "status", "--dsn", migrated_dsn, tmp_path=tmp_path)
    assert run.code == 0, run.err
    assert_fits(run.out)
    assert "idx_rag_documents_embedding_vector" in run.out
    assert "rows 0, lists 100" in run.out
    one = await cli("index", "status", "--table", "rules", "--dsn", migrated_dsn, tmp_path=tmp_path)
    assert one.out.splitlines()[0].split() == ["rules", "idx_rules_embedding_vector"]
    wide = await cli("index", "status", "--dsn", migrated_dsn, tmp_path=tmp_path, columns=160)
    assert_fits(wide.out, 160)
    assert wide.out.split()[:4] == ["table", "index", "rows", "lists"]


_RANDOM_ROWS = """
INSERT INTO rag_documents (id, source_type, source_id, content, embedding, inserted_at, updated_at)
SELECT gen_random_uuid(), 'doc', g::text, 'row',
       (SELECT array_agg(random() - 0.5)::real[] FROM generate_series(1, 768) WHERE g > 0)::vector,
       now(), now()
  FROM generate_series(1, 1500) AS g"""


async def test_index_tune_reports_progress_and_a_summary_when_piped(
    migrated_dsn: str, tmp_path: Path
) -> None:
    connection = await asyncpg.connect(migrated_dsn)
    try:
        await connection.execute(_RANDOM_ROWS)
    finally:
        await connection.close()
    args = ("index", "tune", "--table", "rag_documents", "--sample", "20", "--target", "0.5")
    run = await cli(*args, "--dsn", migrated_dsn, tmp_path=tmp_path)
    assert run.code == 0, run.err
    assert_fits(run.out)
    lines = run.out.splitlines()
    assert lines[0] == "tuning rag_documents (1/1): 20 queries, lists 100"
    assert lines[1].startswith("tuned rag_documents (1/1): probes ")
    assert "probes values tried" in lines[1]
    assert any(line.split()[:1] == ["table"] and "recall@10" in line for line in lines)


async def test_connection_failures_are_one_human_line_without_the_password(
    tmp_path: Path,
) -> None:
    refused = await cli(
        "status", "--dsn", "postgresql://u:s3cretpw@127.0.0.1:1/db", tmp_path=tmp_path
    )
    assert_one_error_line(refused, "127.0.0.1:1")
    unknown = await cli(
        "status", "--dsn", "postgresql://u:s3cretpw@nohost.invalid/db", tmp_path=tmp_path
    )
    assert_one_error_line(unknown, "nohost.invalid")
    for run in (refused, unknown):
        assert "s3cretpw" not in run.out + run.err
        for name in ("gaierror", "ConnectionRefusedError", "OSError", "Error:"):
            assert name not in run.err


async def test_a_bad_setting_is_named_without_its_value(tmp_path: Path) -> None:
    run = await cli(
        "status",
        tmp_path=tmp_path,
        extra_env={"CODEATLAS_POOL_MAX_SIZE": "s3cretpw", "CODEATLAS_DSN": "postgresql://h/db"},
    )
    assert_one_error_line(run, "invalid setting: CODEATLAS_POOL_MAX_SIZE: Input should be")
    assert "s3cretpw" not in run.err


async def test_a_mistyped_option_does_not_echo_the_password(tmp_path: Path) -> None:
    run = await cli("status", "--dns", "postgresql://u:s3cretpw@h/db", tmp_path=tmp_path)
    assert run.code == 2
    assert "unrecognized arguments: --dns postgresql://u:***@h/db" in run.err
    assert "s3cretpw" not in run.err


async def test_ctrl_c_exits_130_without_a_traceback(empty_dsn: str, tmp_path: Path) -> None:
    holder = await asyncpg.connect(empty_dsn)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEATLAS_")}
    try:
        # the migrator waits for the lock this connection holds, then gets Ctrl-C
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "codeatlas.cli",
            "migrate",
            "--dsn",
            empty_dsn,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env | {"CODEATLAS_DATA_DIR": str(tmp_path / "no-server")},
        )
        for _ in range(400):
            waiting = await holder.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'SELECT pg_try_advisory_lock%'"
            )
            if waiting:
                break
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await holder.close()
    assert process.returncode == 130
    assert b"Traceback" not in err
    assert await ledger_versions(empty_dsn) == []


async def test_data_reports_the_session_server_and_refuses_to_remove_it(
    pg: PgServer, tmp_path: Path
) -> None:
    # with CODEATLAS_TEST_DSN the session server is not embedded: start one of our own
    server = pg.embedded or get_embedded_server(tmp_path / "pg")
    data_dir = server.data_dir
    run = await cli("data", "--data-dir", str(data_dir), tmp_path=tmp_path)
    assert run.code == 0, run.err
    # the path is printed whole on its line, however long; the rest fits in 80 columns
    assert run.out.splitlines()[0] == f"embedded server data: {data_dir}"
    assert_fits("\n".join(run.out.splitlines()[1:]))
    assert "size on disk: " in run.out and "write-ahead log " in run.out
    assert f"running (pid {server.pid})" in run.out
    removal = await cli("data", "--data-dir", str(data_dir), "--remove", tmp_path=tmp_path)
    assert_one_error_line(removal, "is in use", "nothing was removed")
    assert (data_dir / "PG_VERSION").is_file()


async def test_data_remove_deletes_an_unused_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "pgdata"
    (data_dir / "pg_wal").mkdir(parents=True)
    (data_dir / "PG_VERSION").write_text("17\n")
    (data_dir / "pg_wal" / "000000010000000000000001").write_bytes(b"\1" * 65536)
    run = await cli("data", "--data-dir", str(data_dir), tmp_path=tmp_path)
    assert run.code == 0, run.err
    assert "server: stopped" in run.out
    assert "write-ahead log 64.0 KiB" in run.out
    removed = await cli("data", "--data-dir", str(data_dir), "--remove", tmp_path=tmp_path)
    assert removed.code == 0, removed.err
    assert removed.out.startswith(f"removed {data_dir} (")
    assert not data_dir.exists()


async def test_data_remove_refuses_a_directory_that_is_not_a_cluster(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    run = await cli("data", "--data-dir", str(precious), "--remove", tmp_path=tmp_path)
    assert_one_error_line(run, "not a PostgreSQL data directory")
    assert (precious / "notes.txt").read_text() == "keep me"


async def test_errors_escaping_a_command_are_described_in_words(migrated_dsn: str) -> None:
    with pytest.raises(socket.gaierror) as lookup:
        await asyncio.get_running_loop().getaddrinfo("nohost.invalid", 5432)
    assert describe_error(lookup.value, "postgresql://u:pw@nohost.invalid/db").startswith(
        "host not found: nohost.invalid"
    )
    with pytest.raises(OSError) as refused:
        await asyncio.open_connection("127.0.0.1", 1)
    assert describe_error(refused.value, "postgresql://u:pw@127.0.0.1:1/db") == (
        "nothing listens on 127.0.0.1:1 (connection refused)"
    )
    connection = await asyncpg.connect(migrated_dsn)
    try:
        with pytest.raises(asyncpg.PostgresError) as server:
            await connection.execute("SELECT * FROM no_such_table")
    finally:
        await connection.close()
    assert describe_error(server.value) == (
        'the server refused: relation "no_such_table" does not exist (SQLSTATE 42P01)'
    )


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (80, "src/codeatlas/repositories/graph.py:120"),
        (30, "…/repositories/graph.py:120"),
        (24, "…positories/graph.py:120"),
        (14, "…/graph.py:120"),
        (5, "…:120"),
    ],
)
def test_shorten_path_keeps_the_line_number(width: int, expected: str) -> None:
    assert shorten_path("src/codeatlas/repositories/graph.py:120", width) == expected


@given(
    path=st.text(st.sampled_from("abc/._-é"), max_size=60),
    line=st.one_of(st.none(), st.integers(1, 99999)),
    width=st.integers(0, 90),
)
def test_shorten_path_never_exceeds_the_width(path: str, line: int | None, width: int) -> None:
    text = path if line is None else f"{path}:{line}"
    short = shorten_path(text, width)
    assert len(short) <= width
    if len(text) <= width:
        assert short == text
    elif line is not None and width > len(f":{line}"):
        assert short.endswith(f":{line}") and short.startswith("…")


def _running(pid: int) -> bool:
    """True if *pid* exists and is not a zombie (a container's init may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


_SERVE = """
import sys, time
from pathlib import Path
from codeatlas._server import data_usage, get_embedded_server
server = get_embedded_server(Path(sys.argv[1]))
print(server.pid, flush=True)
time.sleep(600)
"""


async def test_data_remove_stops_a_leftover_server_then_deletes(tmp_path: Path) -> None:
    data_dir = tmp_path / "leftover"
    # a process that started the server and was SIGKILLed: its exit hook never stopped it
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SERVE, str(data_dir), stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    pid = int(await asyncio.wait_for(process.stdout.readline(), 120))
    process.kill()
    await process.wait()
    try:
        run = await cli("data", "--data-dir", str(data_dir), tmp_path=tmp_path)
        assert f"running (pid {pid}), no codeatlas process attached" in run.out
        removed = await cli("data", "--data-dir", str(data_dir), "--remove", tmp_path=tmp_path)
        assert removed.code == 0, removed.err
        assert not data_dir.exists()
        assert data_usage(data_dir).server_pid is None
        assert not _running(pid)
    finally:
        if data_dir.exists():  # the test failed: do not leave a server behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
