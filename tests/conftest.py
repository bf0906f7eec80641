"""Test configuration: fixtures live in tests/fixtures/ and are loaded as plugins."""

pytest_plugins = [
    "fixtures.server",
    "fixtures.pgbouncer",
    "fixtures.replication",
    "fixtures.telemetry",
]
