import codeatlas


async def test_connect_to_migrated_database(atlas: codeatlas.Atlas) -> None:
    assert await atlas.executor.fetchval("SELECT 1") == 1
    version = await atlas.executor.fetchval(
        "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
    )
    assert tuple(int(p) for p in version.split(".")) >= (0, 5, 0)
