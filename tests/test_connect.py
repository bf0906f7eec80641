"""connect(), the embedded server, the pool's resilience, and secrets staying secret."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import codeatlas
from codeatlas._pool import decode_vector, encode_vector
from codeatlas.config import Settings, redact_dsn
from codeatlas.errors import ConfigurationError, ConnectionLostError, ExtensionError
from fixtures.server import PgServer


@pytest.fixture(scope="module")
def embedded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory of its own, so restarting that server disturbs no other test."""
    return tmp_path_factory.mktemp("own-server") / "pgdata"


@pytest.fixture
async def embedded_atlas(
    embedded_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[codeatlas.Atlas]:
    monkeypatch.delenv("CODEATLAS_DSN", raising=False)
    monkeypatch.setenv("CODEATLAS_DATA_DIR", str(embedded_dir))
    async with codeatlas.connect() as atlas:
        yield atlas


async def test_no_dsn_starts_embedded_server_once_per_process(
    embedded_atlas: codeatlas.Atlas, embedded_dir: Path
) -> None:
    assert embedded_atlas.server is not None
    assert (embedded_dir / "PG_VERSION").exists()
    assert await embedded_atlas.executor.fetchval("SELECT current_database()") == "codeatlas"
    second = await codeatlas.connect()
    try:
        assert second.server is embedded_atlas.server
        assert await second.executor.fetchval("SELECT 1") == 1
    finally:
        await second.close()
    # the server outlives one Atlas being closed
    assert await embedded_atlas.executor.fetchval("SELECT 2") == 2


async def test_processes_sharing_a_data_dir_share_one_server(
    embedded_atlas: codeatlas.Atlas, embedded_dir: Path
) -> None:
    assert embedded_atlas.server is not None
    script = (
        "import asyncio, codeatlas\n"
        "async def main():\n"
        "    async with codeatlas.connect() as atlas:\n"
        "        print(atlas.server.pid)\n"
        "asyncio.run(main())\n"
    )
    env = {"CODEATLAS_DATA_DIR": str(embedded_dir), "PATH": "/usr/bin:/bin"}
    output = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
    )
    assert output.returncode == 0, output.stderr
    assert int(output.stdout.strip()) == embedded_atlas.server.pid
    # the other process exiting did not stop the server we still use
    assert await embedded_atlas.executor.fetchval("SELECT 3") == 3


async def test_await_form_and_migrations_api(migrated_dsn: str) -> None:
    atlas = await codeatlas.connect(migrated_dsn)
    try:
        statuses = await atlas.migrations.status()
        assert all(s.state == "applied" for s in statuses)
        assert (await atlas.migrations.apply()).applied == []
    finally:
        await atlas.close()
    assert atlas.pool.is_closing()


async def test_in_flight_operation_fails_typed_when_backend_terminated(
    atlas: codeatlas.Atlas, pg: PgServer
) -> None:
    async def sleeper() -> None:
        await atlas.executor.execute("SELECT pg_sleep(30)")

    task = asyncio.create_task(sleeper())
    admin = await asyncpg.connect(pg.admin_dsn)
    try:
        for _ in range(100):
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query = 'SELECT pg_sleep(30)' AND pid <> pg_backend_pid()"
            )
            if killed:
                break
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
    with pytest.raises(ConnectionLostError) as caught:
        await task
    assert caught.value.retryable
    # the pool replaces the dead connection: the next operation succeeds
    assert await atlas.executor.fetchval("SELECT 41 + 1") == 42


async def test_pool_survives_a_server_restart(embedded_atlas: codeatlas.Atlas) -> None:
    server = embedded_atlas.server
    assert server is not None

    async def sleeper() -> None:
        await embedded_atlas.executor.execute("SELECT pg_sleep(30)")

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0.3)
    restart = threading.Thread(target=server.restart)
    restart.start()
    with pytest.raises(ConnectionLostError):
        await task
    await anyio.to_thread.run_sync(restart.join)
    # idle pooled connections died too; every next operation must still succeed
    for _ in range(5):
        assert await embedded_atlas.executor.fetchval("SELECT 1") == 1


async def test_cancelled_operation_leaves_connection_clean(migrated_dsn: str) -> None:
    async with codeatlas.connect(migrated_dsn, migrate=False, min_size=1, max_size=1) as atlas:
        backend = await atlas.executor.fetchval("SELECT pg_backend_pid()")
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.3):
                async with atlas.transaction() as tx:
                    await tx.executor.execute("SELECT set_config('work_mem', '1MB', true)")
                    await tx.executor.execute("SELECT pg_sleep(10)")
        # same single pooled connection or a replacement, it must be idle and usable
        async with atlas.executor.acquire() as connection:
            assert not connection.is_in_transaction()
            assert await connection.fetchval("SHOW work_mem") == "4MB"
            assert await connection.fetchval("SELECT 7") == 7
        admin_state = await atlas.executor.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 "
            "AND query = 'SELECT pg_sleep(10)' AND state = 'active'",
            backend,
        )
        assert admin_state == 0


async def test_role_that_cannot_create_pgvector_gets_a_clear_error(pg: PgServer) -> None:
    name = await pg.create_database()
    admin = await asyncpg.connect(pg.admin_dsn)
    try:
        await admin.execute("DROP ROLE IF EXISTS codeatlas_noext")
        await admin.execute("CREATE ROLE codeatlas_noext LOGIN")
        await admin.execute(f'GRANT CONNECT, CREATE ON DATABASE "{name}" TO codeatlas_noext')
        dsn = pg.dsn_for(name).replace("postgres:@", "codeatlas_noext:@")
        with pytest.raises(ExtensionError, match="CREATE EXTENSION vector"):
            await codeatlas.connect(dsn)
    finally:
        await pg.drop_database(name)
        await admin.execute("DROP ROLE IF EXISTS codeatlas_noext")
        await admin.close()


async def test_unreachable_server_error_hides_password() -> None:
    dsn = "postgresql://agent:hunter2secret@127.0.0.1:1/db"
    with pytest.raises(ConnectionLostError) as caught:
        await codeatlas.connect(dsn)
    rendered = f"{caught.value} {caught.value!r} {caught.value.__cause__!r}"
    assert "hunter2secret" not in rendered
    assert "agent:***@127.0.0.1:1" in str(caught.value)


async def test_atlas_repr_and_dsn_hide_password(migrated_dsn: str) -> None:
    dsn = migrated_dsn.replace("postgres:@", "postgres:topsecret@")
    async with codeatlas.connect(dsn, migrate=False) as atlas:
        assert "topsecret" not in repr(atlas)
        assert "topsecret" not in atlas.dsn
        assert "postgres:***@" in atlas.dsn
    settings = Settings(dsn=dsn)  # type: ignore[arg-type]
    assert "topsecret" not in repr(settings)
    assert "topsecret" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u:@/db?host=/tmp/x", "postgresql://u@/db?host=/tmp/x"),
        ("postgresql://h/db?user=u&password=pw", "postgresql://h/db?user=u&password=***"),
        ("host=h user=u password=pw dbname=d", "host=h user=u password=*** dbname=d"),
    ],
)
def test_redact_dsn(dsn: str, expected: str) -> None:
    assert redact_dsn(dsn) == expected


def test_settings_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEATLAS_POOL_MAX_SIZE", "3")
    monkeypatch.setenv("CODEATLAS_STATEMENT_CACHE_SIZE", "0")
    monkeypatch.setenv("CODEATLAS_MIGRATION_LOCK_TIMEOUT", "2.5")
    settings = Settings()
    assert settings.pool_max_size == 3
    assert settings.statement_cache_size == 0
    assert settings.migration_lock_timeout == 2.5


async def test_invalid_dsn_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="invalid DSN"):
        await codeatlas.connect("postgresql://u:pw@h:notaport/db")


def test_vector_codec_round_trips_bit_exactly() -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    value = rng.standard_normal(1536).astype(np.float32)
    decoded = decode_vector(encode_vector(value))
    assert decoded.dtype == np.float32
    assert decoded.tobytes() == value.tobytes()


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


async def test_jsonb_values_read_back_as_written(atlas: codeatlas.Atlas) -> None:
    # jsonb is read with one raw_decode of the server's text (codeatlas._pool._decode_jsonb):
    # documents of every shape, whitespace and escapes inside strings, come back equal
    # (numbers as jsonb stores them: numeric, so floats compare with a tolerance)
    examples: list[Any] = [{}, [], "", " spaced  out ", {"a": [1, 2.5, None, True]}, 2**70]
    examples += [{'quote"d': "line\nbreak\u2028", "é": "\t"}, [[[]]], -0.0, 1e300]

    @settings(max_examples=60, deadline=None)
    @given(value=_JSON)
    def documents(value: Any) -> None:
        examples.append(value)

    documents()
    for value in examples:
        back = await atlas.executor.fetchval("SELECT $1::jsonb", value)
        assert back == pytest.approx(value) if isinstance(value, float) else _same_json(back, value)


def _same_json(left: Any, right: Any) -> bool:
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same_json(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same_json, left, right))
    if isinstance(right, float) and not isinstance(right, bool):
        return isinstance(left, int | float) and left == pytest.approx(right, rel=1e-12, abs=0)
    return bool(left == right and type(left) is type(right))


def test_the_settings_page_names_every_setting() -> None:
    # docs/concepts.md lists the settings by area; a field added without it fails here
    page = (Path(__file__).parents[1] / "docs" / "concepts.md").read_text()
    section = page.split("## Settings", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in Settings.model_fields if f"`{name}`" not in section]
    assert missing == []
