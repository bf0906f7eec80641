"""The write-ahead-log settings of the embedded server: little WAL kept, standbys still possible."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from codeatlas._server import EmbeddedServer, get_embedded_server, wal_settings
from fixtures.server import PgServer

_SHOWN = "SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1::text[])"
_SEGMENTS = "SELECT count(*) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'"


def embedded(pg: PgServer, tmp_path: Path) -> EmbeddedServer:
    # the session's server when it is the embedded one; else one of our own
    return pg.embedded or get_embedded_server(tmp_path / "pg")


async def test_the_embedded_server_keeps_little_wal_and_stays_replica_capable(
    pg: PgServer, tmp_path: Path
) -> None:
    server = embedded(pg, tmp_path)
    connection = await asyncpg.connect(server.dsn("postgres"))
    try:
        rows = await connection.fetch(
            _SHOWN, [*wal_settings(), "wal_level", "max_wal_senders", "wal_segment_size"]
        )
        shown = {r["name"]: (r["setting"], r["unit"]) for r in rows}
        segment = int(shown["wal_segment_size"][0])  # bytes
        assert shown["max_wal_size"] == (str(256 * 1024 * 1024 // segment * segment // 2**20), "MB")
        assert shown["min_wal_size"] == ("32", "MB")
        assert shown["wal_recycle"][0] == "off"
        assert shown["wal_compression"][0] in {"on", "pglz"}
        # pg_basebackup and streaming standbys need these (tests/fixtures/replication.py)
        assert shown["wal_level"][0] == "replica" and int(shown["max_wal_senders"][0]) > 0

        # WAL a checkpoint no longer needs is deleted, not kept for reuse: after writing
        # into a dozen segments and a checkpoint, only the current one or two remain
        await connection.execute("CREATE TEMP TABLE t (x int)")
        for _ in range(12):
            await connection.execute("CREATE TABLE IF NOT EXISTS wal_churn (x int)")
            await connection.execute("DROP TABLE wal_churn")
            await connection.execute("SELECT pg_switch_wal()")
        before = await connection.fetchval(_SEGMENTS)
        await connection.execute("CHECKPOINT")
        await connection.execute("CHECKPOINT")
        after = await connection.fetchval(_SEGMENTS)
    finally:
        await connection.close()
    assert before >= 12 and after <= 3, (before, after)
