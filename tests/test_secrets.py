"""A DSN's password never shows: not in redact_dsn, errors, reprs, or the CLI's output.

Generated DSNs of every shape users write (URLs with the password raw or percent-encoded,
in the user part or the query string, several hosts; libpq key=value strings, quoted or
not; malformed strings) carry a random password with special characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import codeatlas
from codeatlas._pool import open_connection
from codeatlas.cli import main
from codeatlas.config import Settings, dsn_problem, redact_dsn
from codeatlas.errors import CodeAtlasError
from fixtures.server import PgServer

# printable ASCII with every character DSN parsers treat specially, plus some non-ASCII
PASSWORD = st.text(
    st.sampled_from("abcdefXYZ0123456789 #/@:?&=%+'\"\\;,.!$*()[]{}~^|<>-_`é€😀\t"),
    min_size=4,
    max_size=24,
).filter(lambda p: p.strip() == p and len(set(p)) > 2)
USER = st.sampled_from(["u", "app_user", "postgres"])
DB = st.sampled_from(["db", "codeatlas", "x"])


def _kv_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


#: shape name -> DSN built from (user, password, host:port, database)
SHAPES: dict[str, Callable[[str, str, str, str], str]] = {
    "url raw": lambda u, p, h, d: f"postgresql://{u}:{p}@{h}/{d}",
    "url encoded": lambda u, p, h, d: f"postgresql://{u}:{quote(p, safe='')}@{h}/{d}",
    "query encoded": lambda u, p, h, d: (
        f"postgresql://{u}@{h}/{d}?sslmode=disable&password={quote(p, safe='')}"
    ),
    "query raw": lambda u, p, h, d: f"postgresql://{u}@{h}/{d}?password={p}&sslmode=disable",
    "two hosts": lambda u, p, h, d: f"postgres://{u}:{p}@{h},127.0.0.2:5433/{d}",
    "key=value quoted": lambda u, p, h, d: (
        f"host={h.split(':')[0]} port={h.split(':')[1]} user={u} password = {_kv_quote(p)} "
        f"dbname={d}"
    ),
    "key=value plain": lambda u, p, h, d: (
        f"host={h.split(':')[0]} password={p.replace(' ', '').replace(chr(9), '')} dbname={d}"
    ),
    "no colon slash slash": lambda u, p, h, d: f"postgresql//{u}:{p}@{h}/{d}",
    "one slash": lambda u, p, h, d: f"postgresql:/{u}:{p}@{h}/{d}",
    "no scheme": lambda u, p, h, d: f"{u}:{p}@{h}/{d}",
}
#: nothing listens there: a connection attempt fails at once
NOWHERE = "127.0.0.1:1"


def _secret(shape: str, password: str) -> str:
    # the plain key=value shape cannot hold whitespace: what it holds is the secret
    return password.replace(" ", "").replace("\t", "") if shape == "key=value plain" else password


def _chain(exc: BaseException) -> str:
    """Every message a traceback of *exc* would print."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


@given(
    shape=st.sampled_from(sorted(SHAPES)),
    user=USER,
    password=PASSWORD,
    database=DB,
)
@settings(max_examples=400, deadline=None)
def test_redact_dsn_never_shows_the_password(
    shape: str, user: str, password: str, database: str
) -> None:
    dsn = SHAPES[shape](user, password, "db.example.com:5432", database)
    secret = _secret(shape, password)
    benign = redact_dsn(SHAPES[shape](user, "pw", "db.example.com:5432", database))
    assume(secret not in benign and len(secret) >= 4)
    redacted = redact_dsn(dsn)
    assert secret not in redacted
    assert quote(secret, safe="") not in redacted
    problem = dsn_problem(dsn)
    assert problem is None or secret not in problem
    assert secret not in repr(Settings(dsn=dsn)) + str(Settings(dsn=dsn))


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://u:ab#cdSECRET@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:a/b@c@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("host=h password = s3cret", "host=h password=***"),
        ("host=h password='a b' dbname=x", "host=h password=*** dbname=x"),
        ("postgresql://u@h/db?password=s3cret&sslmode=require", "postgresql://u@h/db?password=***"),
        ("postgresql://u:pw@h1:5432,h2:5433/db", "postgresql://u:***@h1:5432,h2:5433/db"),
        ("postgresql://h/db?sslmode=require", "postgresql://h/db?sslmode=require"),
        (
            "postgresql//u:secret@h/x",
            "<unparseable DSN: the scheme must be followed by '://' (postgresql://...)>",
        ),
        (
            "u:secret@h",
            "<unparseable DSN: the scheme must be followed by '://' (postgresql://...)>",
        ),
        (
            "host=h password='unterminated",
            "<unparseable DSN: key=value DSN: item 2 has an unterminated quoted value>",
        ),
    ],
)
def test_redact_dsn_shapes(dsn: str, expected: str) -> None:
    assert redact_dsn(dsn) == expected


@given(
    shape=st.sampled_from(sorted(SHAPES)),
    user=USER,
    password=PASSWORD,
    database=DB,
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
async def test_connect_errors_never_show_the_password(
    shape: str, user: str, password: str, database: str
) -> None:
    dsn = SHAPES[shape](user, password, NOWHERE, database)
    secret = _secret(shape, password)
    assume(len(secret) >= 4 and secret not in f"{NOWHERE} {user} {database} ***")
    try:
        # a password with '@' or '/' can turn part of itself into a "host" to look up
        connection = await asyncio.wait_for(open_connection(dsn, Settings()), 10)
    except CodeAtlasError as exc:
        assert secret not in _chain(exc)
    except TimeoutError:
        pass
    else:  # pragma: no cover - nothing listens on NOWHERE
        await connection.close()
        raise AssertionError("connected to a port where nothing listens")


def _run_cli(argv: list[str]) -> tuple[int, str]:
    """Run main(*argv*) on a thread of its own (it runs its own event loop); return output."""
    buffer = io.StringIO()
    result: list[int] = []

    def target() -> None:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            try:
                result.append(main(argv))
            except SystemExit as exit_:  # argparse
                result.append(int(exit_.code or 0))

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert result, "the command did not finish"
    return result[0], buffer.getvalue()


@given(
    shape=st.sampled_from(sorted(SHAPES)),
    user=USER,
    password=PASSWORD,
    database=DB,
    command=st.sampled_from([["status"], ["migrate"], ["doctor"], ["index", "status"]]),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_cli_output_never_shows_the_password(
    shape: str, user: str, password: str, database: str, command: list[str]
) -> None:
    dsn = SHAPES[shape](user, password, NOWHERE, database)
    secret = _secret(shape, password)
    assume(len(secret) >= 4 and secret not in f"{NOWHERE} {user} {database} ***")
    code, output = _run_cli([*command, "--dsn", dsn])
    assert code == 1
    assert output.startswith("error: ") and "Traceback" not in output
    assert secret not in output


@pytest.fixture(scope="module")
async def module_dsn(pg: PgServer) -> AsyncIterator[str]:
    """A migrated database for this module's connected tests."""
    name = await pg.create_database(template=await pg.ensure_template())
    yield pg.dsn_for(name)
    await pg.drop_database(name)


@given(password=PASSWORD)
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
async def test_a_connected_atlas_never_shows_the_password(module_dsn: str, password: str) -> None:
    if "postgres:@" in module_dsn:
        # the embedded server's socket DSN: trust auth accepts any password
        dsn = module_dsn.replace("postgres:@", f"postgres:{quote(password, safe='')}@", 1)
    else:  # CODEATLAS_TEST_DSN: its own password is the secret
        dsn = module_dsn
        password = urlsplit(module_dsn).password or password
    async with codeatlas.connect(dsn, migrate=False) as atlas:
        shown = repr(atlas) + str(atlas) + atlas.dsn + repr(atlas.settings)
    assert password not in shown and quote(password, safe="") not in shown
