"""The migration engine against a real server, with the test-only sets in migration_sets/."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from pathlib import Path

import asyncpg
import pytest

from codeatlas.config import Settings
from codeatlas.errors import (
    ChecksumMismatchError,
    ConnectionLostError,
    DatabaseAheadError,
    DataLossRefusedError,
    InvalidInputError,
    MigrationError,
    MigrationFailedError,
    MigrationLockTimeout,
    MissingMigrationError,
)
from codeatlas.migrations import Migrator, dropped_tables, load_migrations
from codeatlas.migrations._engine import MIGRATION_LOCK_KEY

SETS = Path(__file__).parent / "migration_sets"


@pytest.fixture
def basic(tmp_path: Path) -> Path:
    """A private copy of the basic set, so a test may edit or delete its files."""
    target = tmp_path / "basic"
    shutil.copytree(SETS / "basic", target)
    return target


async def ledger(dsn: str) -> list[tuple[int, str]]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT version, name FROM codeatlas_schema_migrations ORDER BY version"
        )
    finally:
        await connection.close()
    return [(row["version"], row["name"]) for row in rows]


async def scalar(dsn: str, query: str) -> object:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


def test_parse_sections_and_checksum_normalises_line_endings(basic: Path) -> None:
    migrations = load_migrations(basic)
    assert [m.version for m in migrations] == [20990101000001, 20990101000002, 20990101000003]
    concurrent = migrations[1]
    assert not concurrent.up_transactional and not concurrent.down_transactional
    assert migrations[0].up_transactional
    assert "CREATE TABLE widgets" in migrations[0].up
    assert migrations[0].down is not None and "DROP TABLE widgets" in migrations[0].down

    before = migrations[0].checksum
    path = basic / migrations[0].filename
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert load_migrations(basic)[0].checksum == before


def test_malformed_files_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "20990101000001_no_marker.sql").write_text("CREATE TABLE x (id int);\n")
    with pytest.raises(MigrationError, match="must start with a '-- migrate:up'"):
        load_migrations(tmp_path)
    (tmp_path / "20990101000001_no_marker.sql").write_text(
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY a ON t (x); SELECT 1;\n"
    )
    with pytest.raises(MigrationError, match="exactly one statement"):
        load_migrations(tmp_path)


def test_dropped_tables_are_found_in_down_sections() -> None:
    sql = 'DROP TABLE IF EXISTS a, public.b CASCADE;\nselect 1;\ndrop table "C";'
    assert dropped_tables(sql) == ["a", "public.b", '"C"']


async def test_apply_records_each_migration_once_and_is_idempotent(
    empty_dsn: str, basic: Path
) -> None:
    first = await Migrator(empty_dsn, source=basic).apply()
    assert first.applied == [20990101000001, 20990101000002, 20990101000003]
    assert await ledger(empty_dsn) == [
        (20990101000001, "create_widgets"),
        (20990101000002, "index_widget_codes"),
        (20990101000003, "add_widget_color"),
    ]
    second = await Migrator(empty_dsn, source=basic).apply()
    assert second.applied == []
    statuses = await Migrator(empty_dsn, source=basic).status()
    assert [s.state for s in statuses] == ["applied"] * 3
    assert all(s.execution_ms is not None and s.execution_ms >= 0 for s in statuses)
    # the vector extension is created by the engine's bootstrap
    assert await scalar(empty_dsn, "SELECT count(*) FROM pg_extension WHERE extname='vector'") == 1


async def test_apply_to_stops_at_the_given_version(empty_dsn: str, basic: Path) -> None:
    result = await Migrator(empty_dsn, source=basic).apply(to=20990101000002)
    assert result.applied == [20990101000001, 20990101000002]
    states = [s.state for s in await Migrator(empty_dsn, source=basic).status()]
    assert states == ["applied", "applied", "pending"]


async def test_edited_applied_migration_stops_startup(empty_dsn: str, basic: Path) -> None:
    await Migrator(empty_dsn, source=basic).apply()
    path = basic / "20990101000003_add_widget_color.sql"
    path.write_text(path.read_text().replace("color text", "colour text"))
    with pytest.raises(ChecksumMismatchError) as caught:
        await Migrator(empty_dsn, source=basic).apply()
    assert "20990101000003" in str(caught.value)
    assert "20990101000003_add_widget_color.sql" in str(caught.value)
    statuses = await Migrator(empty_dsn, source=basic).status()
    assert statuses[-1].state == "changed"


async def test_crlf_only_change_is_accepted(empty_dsn: str, basic: Path) -> None:
    await Migrator(empty_dsn, source=basic).apply()
    for path in sorted(basic.glob("*.sql")):  # noqa: ASYNC240 - tiny local files
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert (await Migrator(empty_dsn, source=basic).apply()).applied == []


async def test_applied_migration_missing_from_package(empty_dsn: str, basic: Path) -> None:
    await Migrator(empty_dsn, source=basic).apply()
    (basic / "20990101000002_index_widget_codes.sql").unlink()
    with pytest.raises(MissingMigrationError, match=r"20990101000002_index_widget_codes\.sql"):
        await Migrator(empty_dsn, source=basic).apply()


async def test_database_ahead_of_code(empty_dsn: str, basic: Path) -> None:
    await Migrator(empty_dsn, source=basic).apply()
    (basic / "20990101000003_add_widget_color.sql").unlink()
    with pytest.raises(DatabaseAheadError, match=r"20990101000003_add_widget_color\.sql"):
        await Migrator(empty_dsn, source=basic).apply()


async def test_failed_migration_leaves_no_ddl_and_no_ledger_row(empty_dsn: str) -> None:
    with pytest.raises(MigrationFailedError, match="20990101000002") as caught:
        await Migrator(empty_dsn, source=SETS / "failing").apply()
    assert isinstance(caught.value.__cause__, asyncpg.UniqueViolationError)
    assert await ledger(empty_dsn) == [(20990101000001, "create_widgets")]
    assert await scalar(empty_dsn, "SELECT to_regclass('half_done')") is None
    size_column = await scalar(
        empty_dsn,
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_name = 'widgets' AND column_name = 'size'",
    )
    assert size_column == 0


async def test_rollback_refuses_to_drop_tables_with_rows(empty_dsn: str, basic: Path) -> None:
    migrator = Migrator(empty_dsn, source=basic)
    await migrator.apply()
    connection = await asyncpg.connect(empty_dsn)
    try:
        await connection.execute("INSERT INTO widgets (code) VALUES ('a')")
    finally:
        await connection.close()
    # 3 and 2 drop no table, 1 drops widgets: refused before anything is reverted
    with pytest.raises(DataLossRefusedError, match="widgets"):
        await migrator.rollback(to=0)
    assert len(await ledger(empty_dsn)) == 3
    assert await scalar(empty_dsn, "SELECT count(*) FROM widgets") == 1

    # rolling back only what loses no data is fine
    result = await migrator.rollback(to=20990101000001)
    assert result.reverted == [20990101000003, 20990101000002]
    assert await scalar(empty_dsn, "SELECT to_regclass('widgets_code_key')") is None

    result = await migrator.rollback(to=0, allow_data_loss=True)
    assert result.reverted == [20990101000001]
    assert await ledger(empty_dsn) == []
    assert await scalar(empty_dsn, "SELECT to_regclass('widgets')") is None


async def test_rollback_of_empty_tables_needs_no_flag(empty_dsn: str, basic: Path) -> None:
    migrator = Migrator(empty_dsn, source=basic)
    await migrator.apply()
    assert (await migrator.rollback(to=0)).reverted == [
        20990101000003,
        20990101000002,
        20990101000001,
    ]
    assert (await migrator.apply()).applied == [20990101000001, 20990101000002, 20990101000003]


async def test_lock_wait_times_out_with_typed_error(empty_dsn: str, basic: Path) -> None:
    holder = await asyncpg.connect(empty_dsn)
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK_KEY)
        settings = Settings(migration_lock_timeout=0.3, migration_lock_poll_interval=0.02)
        with pytest.raises(MigrationLockTimeout) as caught:
            await Migrator(empty_dsn, source=basic, settings=settings).apply()
        holder_pid = await holder.fetchval("SELECT pg_backend_pid()")
        assert str(holder_pid) in str(caught.value)
        assert caught.value.retryable
        # the waiter held no transaction open while polling, and applied nothing
        assert await scalar(empty_dsn, "SELECT to_regclass('codeatlas_schema_migrations')") is None
    finally:
        await holder.close()
    assert (await Migrator(empty_dsn, source=basic).apply()).applied[-1] == 20990101000003


async def test_up_to_date_database_needs_no_lock(empty_dsn: str, basic: Path) -> None:
    await Migrator(empty_dsn, source=basic).apply()
    holder = await asyncpg.connect(empty_dsn)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        settings = Settings(migration_lock_timeout=0.2)
        result = await Migrator(empty_dsn, source=basic, settings=settings).apply()
        assert result.applied == []
    finally:
        await holder.close()


async def test_invalid_concurrent_index_is_repaired_on_next_run(
    empty_dsn: str, basic: Path
) -> None:
    migrator = Migrator(empty_dsn, source=basic)
    await migrator.apply(to=20990101000001)
    connection = await asyncpg.connect(empty_dsn)
    try:
        # duplicates make CREATE UNIQUE INDEX CONCURRENTLY fail half-way: an INVALID index
        await connection.execute("INSERT INTO widgets (code) VALUES ('dup'), ('dup')")
        with pytest.raises(MigrationFailedError, match="20990101000002"):
            await migrator.apply()
        valid = await connection.fetchval(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'widgets_code_key'::regclass"
        )
        assert valid is False
        await connection.execute("DELETE FROM widgets WHERE id = (SELECT max(id) FROM widgets)")
        result = await migrator.apply()
        assert result.applied == [20990101000002, 20990101000003]
        valid = await connection.fetchval(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'widgets_code_key'::regclass"
        )
        assert valid is True
    finally:
        await connection.close()


# -- interrupted and over-long migrations (tests/migration_sets/slow_index) --------------

SLOW = SETS / "slow_index"
SLOW_INDEX = 20990101000002
_MIGRATE_IN_SUBPROCESS = """
import asyncio, sys
from pathlib import Path
from codeatlas.migrations import Migrator
asyncio.run(Migrator(sys.argv[1], source=Path(sys.argv[2])).apply())
"""
_BUILDING = """
SELECT pid FROM pg_stat_activity
 WHERE datname = current_database() AND state = 'active'
   AND query LIKE 'CREATE INDEX CONCURRENTLY things_slow_idx%'"""


async def _wait_for(dsn: str, query: str, *args: object, present: bool = True) -> object:
    """Poll *query* until it returns a row (or, with present=False, none); return its value."""
    connection = await asyncpg.connect(dsn)
    try:
        for _ in range(600):
            value = await connection.fetchval(query, *args)
            if (value is not None) == present:
                return value
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    raise AssertionError(f"timed out waiting for {query!r}")


async def _index_valid(dsn: str) -> object:
    return await scalar(
        dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('things_slow_idx')"
    )


async def test_run_killed_during_concurrent_index_is_completed_by_the_next(
    empty_dsn: str,
) -> None:
    await Migrator(empty_dsn, source=SLOW).apply(to=20990101000001)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _MIGRATE_IN_SUBPROCESS,
        empty_dsn,
        str(SLOW),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        backend = await _wait_for(empty_dsn, _BUILDING)
    finally:
        process.kill()  # SIGKILL: no finally block, no goodbye to the server
        await asyncio.wait_for(process.wait(), 10)
    # The orphaned backend finishes the build, then notices its client is gone.
    await _wait_for(
        empty_dsn, "SELECT 1 FROM pg_stat_activity WHERE pid = $1", backend, present=False
    )
    assert await _index_valid(empty_dsn) is True
    assert await ledger(empty_dsn) == [(20990101000001, "create_things")]  # the wedge state

    result = await Migrator(empty_dsn, source=SLOW).apply()
    assert result.applied == [SLOW_INDEX, 20990101000003]
    assert result.resumed == [SLOW_INDEX]
    assert [v for v, _ in await ledger(empty_dsn)] == [20990101000001, SLOW_INDEX, 20990101000003]
    assert await _index_valid(empty_dsn) is True
    assert (await Migrator(empty_dsn, source=SLOW).apply()).applied == []


async def test_terminated_migrator_is_retryable_and_the_rerun_repairs(empty_dsn: str) -> None:
    migrator = Migrator(empty_dsn, source=SLOW)
    await migrator.apply(to=20990101000001)
    running = asyncio.create_task(migrator.apply())
    backend = await _wait_for(empty_dsn, _BUILDING)
    assert await scalar(empty_dsn, f"SELECT pg_terminate_backend({int(backend)})") is True  # type: ignore[call-overload]
    with pytest.raises(ConnectionLostError, match=str(SLOW_INDEX)) as caught:
        await running
    assert caught.value.retryable
    assert await _index_valid(empty_dsn) is False  # the cancelled build's leftover
    result = await migrator.apply()
    assert result.applied == [SLOW_INDEX, 20990101000003] and result.resumed == []
    assert await _index_valid(empty_dsn) is True


async def test_migration_statements_are_not_cut_by_command_timeout(empty_dsn: str) -> None:
    # the index build takes ~2 s, four times the client's command_timeout
    settings = Settings(command_timeout=0.5)
    result = await Migrator(empty_dsn, source=SLOW, settings=settings).apply()
    assert result.applied[-1] == 20990101000003
    assert await _index_valid(empty_dsn) is True


async def test_migration_statement_timeout_is_a_migration_error(empty_dsn: str) -> None:
    settings = Settings(migration_statement_timeout=0.3)
    with pytest.raises(MigrationFailedError, match=r"migration_statement_timeout \(0.3 s\)"):
        await Migrator(empty_dsn, source=SLOW, settings=settings).apply()
    assert [v for v, _ in await ledger(empty_dsn)] == [20990101000001]
    # without the budget the next run drops the INVALID leftover and builds the index
    assert (await Migrator(empty_dsn, source=SLOW).apply()).applied == [
        SLOW_INDEX,
        20990101000003,
    ]
    assert await _index_valid(empty_dsn) is True


async def test_interrupted_concurrent_drop_is_completed_by_the_next_rollback(
    empty_dsn: str,
) -> None:
    migrator = Migrator(empty_dsn, source=SLOW)
    await migrator.apply()
    # what a rollback killed between DROP INDEX CONCURRENTLY and its ledger delete leaves
    connection = await asyncpg.connect(empty_dsn)
    try:
        await connection.execute("ALTER TABLE things DROP COLUMN label")
        await connection.execute(
            "DELETE FROM codeatlas_schema_migrations WHERE version = 20990101000003"
        )
        await connection.execute("DROP INDEX things_slow_idx")
    finally:
        await connection.close()
    result = await migrator.rollback(to=20990101000001)
    assert result.reverted == [SLOW_INDEX]
    assert [v for v, _ in await ledger(empty_dsn)] == [20990101000001]


# -- file names, status, --to --------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["20990101000004-add-things.sql", "2099_add_things.sql", "20990101000004_Add.sql", "x.SQL"],
)
def test_misnamed_sql_files_are_refused(basic: Path, name: str) -> None:
    (basic / name).write_text("-- migrate:up\nSELECT 1;\n")
    with pytest.raises(MigrationError, match=re.escape(name) + ": not a migration file name"):
        load_migrations(basic)


def test_other_files_are_ignored(basic: Path) -> None:
    (basic / "README.md").write_text("notes\n")
    (basic / "__init__.py").write_text("")
    assert len(load_migrations(basic)) == 3


async def test_status_names_versions_ahead_of_the_code(empty_dsn: str, basic: Path) -> None:
    await Migrator(empty_dsn, source=basic).apply()
    (basic / "20990101000003_add_widget_color.sql").unlink()
    statuses = await Migrator(empty_dsn, source=basic).status()
    assert [(s.version, s.state) for s in statuses] == [
        (20990101000001, "applied"),
        (20990101000002, "applied"),
        (20990101000003, "ahead"),
    ]
    assert statuses[-1].applied and statuses[-1].name == "add_widget_color"
    (basic / "20990101000002_index_widget_codes.sql").unlink()
    states = [s.state for s in await Migrator(empty_dsn, source=basic).status()]
    assert states == ["applied", "ahead", "ahead"]


async def test_status_names_a_file_missing_from_the_middle(empty_dsn: str, basic: Path) -> None:
    await Migrator(empty_dsn, source=basic).apply()
    (basic / "20990101000002_index_widget_codes.sql").unlink()
    states = [s.state for s in await Migrator(empty_dsn, source=basic).status()]
    assert states == ["applied", "missing", "applied"]


@pytest.mark.parametrize("to", [12345, 20990101000004, -5])
async def test_apply_to_an_unknown_version_is_refused(empty_dsn: str, basic: Path, to: int) -> None:
    with pytest.raises(InvalidInputError, match=rf"^to: {to} is not a migration version"):
        await Migrator(empty_dsn, source=basic).apply(to=to)
    assert await scalar(empty_dsn, "SELECT to_regclass('codeatlas_schema_migrations')") is None


@pytest.mark.parametrize("to", [-5, 20990101000004, 1])
async def test_rollback_to_an_unknown_version_is_refused(
    empty_dsn: str, basic: Path, to: int
) -> None:
    migrator = Migrator(empty_dsn, source=basic)
    await migrator.apply()
    with pytest.raises(InvalidInputError, match=r"use 0 \(revert all\) or one of the 3"):
        await migrator.rollback(to=to)
    assert len(await ledger(empty_dsn)) == 3
