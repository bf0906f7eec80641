"""Bootstrap connection, pgvector check, codecs, and the asyncpg pool.

Order matters: the ``vector`` type must exist before a pool whose ``init`` hook
registers its codec, so a direct bootstrap connection creates the extension first;
migrations run next (on their own connection), and only then is the pool created.
"""

from __future__ import annotations

import json
import os
import re
import struct
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import asyncpg
import numpy as np
import numpy.typing as npt
from asyncpg.pool import Pool

from ._db import pooled_connection_class, reset_connection, translated
from .config import Settings, redact_dsn
from .errors import ExtensionError, connect_error

__all__ = [
    "MIN_PGVECTOR",
    "PackedVector",
    "behind_pooler",
    "bootstrap",
    "create_pool",
    "decode_vector",
    "encode_vector",
    "endpoint_of",
    "init_connection",
    "open_connection",
    "parse_version",
]

MIN_PGVECTOR: Final = (0, 5, 0)
_INSTALL_HINT: Final = (
    "install pgvector >= 0.5.0 on the server (Debian/Ubuntu: "
    "apt install postgresql-<major>-pgvector; or build it from the pgvector sources), "
    "or leave CODEATLAS_DSN unset to use the embedded server, which ships pgvector 0.8"
)
_VECTOR_HEADER: Final = struct.Struct(">HH")
_BE_FLOAT32: Final = np.dtype(">f4")
_JSONB_VERSION: Final = b"\x01"
_raw_decode: Final = json.JSONDecoder().raw_decode
#: ``host=...`` / ``port=...`` in a key=value DSN (spaces around ``=`` allowed).
_KEYWORD: Final = re.compile(r"\b(host|port)\s*=\s*('[^']*'|\S+)")


class PackedVector:
    """A vector already in wire format, for ``vector[]`` parameters.

    asyncpg's array encoder recurses into anything iterable, so an array of numpy vectors
    would be taken for a 2-D array of floats; this wrapper is deliberately not iterable.
    """

    __slots__ = ("data",)

    def __init__(self, value: Any) -> None:
        self.data = encode_vector(value)


def encode_vector(value: Any) -> bytes:
    """Encode a 1-D float sequence in pgvector's binary format (big-endian float32)."""
    if isinstance(value, PackedVector):
        return value.data
    array = np.asarray(value, dtype=_BE_FLOAT32)
    if array.ndim != 1:
        raise ValueError(f"a vector must be 1-dimensional, got shape {array.shape}")
    return _VECTOR_HEADER.pack(array.shape[0], 0) + array.tobytes()


def decode_vector(data: bytes) -> npt.NDArray[np.float32]:
    """Decode pgvector's binary format into a native-endian float32 array."""
    dim, _unused = _VECTOR_HEADER.unpack_from(data)
    return np.frombuffer(data, dtype=_BE_FLOAT32, count=dim, offset=4).astype(np.float32)


async def init_connection(connection: asyncpg.Connection) -> None:
    """Register the binary vector and JSON codecs (the pool's ``init`` hook)."""
    await connection.set_type_codec(
        "vector",
        schema="public",
        encoder=encode_vector,
        decoder=decode_vector,
        format="binary",
    )
    # Binary JSON codecs: they also serve binary COPY, which text-format codecs cannot.
    await connection.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=_encode_jsonb, decoder=_decode_jsonb, format="binary"
    )
    await connection.set_type_codec(
        "json", schema="pg_catalog", encoder=_encode_json, decoder=json.loads, format="binary"
    )


def _encode_jsonb(value: Any) -> bytes:
    return _JSONB_VERSION + json.dumps(value, separators=(",", ":")).encode()


def _decode_jsonb(data: bytes) -> Any:
    # A version byte, then the document as the server wrote it (UTF-8, no surrounding
    # whitespace): one raw_decode, a third of json.loads' time (its encoding detection
    # and checks are Python), for every jsonb value of every row read.
    text = data[1:].decode()
    value, end = _raw_decode(text)
    return value if end == len(text) else json.loads(text)


def _encode_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _connect_kwargs(settings: Settings) -> dict[str, Any]:
    # A transaction-mode pooler hands each transaction to any server connection: a
    # statement prepared on one is unknown on the next, so none is cached.
    cache = 0 if settings.pooler == "transaction" else settings.statement_cache_size
    return {
        "command_timeout": settings.command_timeout,
        "statement_cache_size": cache,
        "server_settings": {"application_name": settings.application_name},
    }


async def open_connection(dsn: str, settings: Settings) -> asyncpg.Connection:
    """Open one direct connection (no codecs), with errors that never show the password."""
    try:
        return await asyncpg.connect(dsn, **_connect_kwargs(settings))
    except Exception as exc:
        error = connect_error(exc, endpoint=endpoint_of(dsn), dsn=redact_dsn(dsn))
    # raised outside the handler, so the driver's exception (whose text can contain the
    # DSN) is not kept as the error's context either
    raise error


def endpoint_of(dsn: str) -> tuple[str, str]:
    """Return the (host, port) *dsn* points at, for messages; ("the server", "") if unclear.

    A URL whose user part could not be parsed (an unencoded ``#``, ``/`` or ``?`` in the
    password) gives no endpoint, since its "host" could be a piece of the password.
    """
    host = port = ""
    try:
        if "://" in dsn:
            parts = urlsplit(dsn)
            if "@" in dsn.split("://", 1)[1] and "@" not in parts.netloc:
                return ("the server", "")
            query = parse_qs(parts.query)
            host = query.get("host", [""])[0] or (parts.hostname or "")
            port = query.get("port", [""])[0] or (str(parts.port) if parts.port else "")
        else:
            for key, value in _KEYWORD.findall(dsn):
                if key == "host":
                    host = value.strip("'")
                elif key == "port":
                    port = value.strip("'")
    except ValueError:
        return ("the server", "")
    host = host.split(",")[0] or os.environ.get("PGHOST", "") or "localhost"
    return host, port.split(",")[0] or os.environ.get("PGPORT", "") or "5432"


def parse_version(text: str) -> tuple[int, ...]:
    """Return ``"0.8.6"`` as ``(0, 8, 6)``."""
    return tuple(int(part) for part in text.split(".") if part.isdigit())


#: The backend's own pid; a pooler in between announces a cancel key of its own instead.
_BACKEND_PID: Final = "SELECT pg_backend_pid()"


async def behind_pooler(connection: asyncpg.Connection) -> bool:
    """True when *connection* reaches its backend through a pooler (pgbouncer and the like).

    A direct connection's cancel key carries the backend's pid; a pooler multiplexes
    backends, so the key it announces is its own and differs from ``pg_backend_pid()``.
    """
    with translated(connection):
        pid = await connection.fetchval(_BACKEND_PID)
    return bool(pid != connection.get_server_pid())


async def bootstrap(connection: asyncpg.Connection) -> str:
    """Make sure pgvector >= 0.5.0 is installed in the database; return its version."""
    with translated(connection):
        installed = await connection.fetchval(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        )
        if installed is None:
            available = await connection.fetchval(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
            )
            if available is None:
                raise ExtensionError(f"pgvector is not installed on the server: {_INSTALL_HINT}")
            try:
                # two processes may race here; the loser's unique violation is harmless
                await connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except asyncpg.InsufficientPrivilegeError:
                raise ExtensionError(
                    "pgvector is available on the server but this role may not create it: "
                    "ask a superuser or the database owner to run CREATE EXTENSION vector; "
                    "in this database"
                ) from None
            except asyncpg.UniqueViolationError:
                pass
            installed = await connection.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            )
    version = str(installed)
    if parse_version(version) < MIN_PGVECTOR:
        raise ExtensionError(
            f"pgvector {version} is too old (IVFFlat cosine search needs >= 0.5.0): "
            f"run ALTER EXTENSION vector UPDATE after you {_INSTALL_HINT}"
        )
    return version


async def create_pool(dsn: str, settings: Settings, **pool_options: Any) -> Pool:
    """Create the asyncpg pool with codecs registered on every connection.

    Its ``reset`` skips asyncpg's reset round trip for connections codeatlas vouches for
    (``codeatlas._db.reset_connection``); a ``reset`` in *pool_options* replaces it. Its
    connections carry the executor's bookkeeping (``codeatlas._db.PooledConnection``),
    on top of a ``connection_class`` in *pool_options* if one is given.
    """
    options: dict[str, Any] = {
        "min_size": settings.pool_min_size,
        "max_size": settings.pool_max_size,
        **_connect_kwargs(settings),
        "init": init_connection,
        "reset": reset_connection,
    }
    options.update(pool_options)
    options["connection_class"] = pooled_connection_class(
        options.get("connection_class", asyncpg.Connection)
    )
    try:
        pool = await asyncpg.create_pool(dsn, **options)
    except Exception as exc:
        error = connect_error(exc, endpoint=endpoint_of(dsn), dsn=redact_dsn(dsn))
    else:
        assert pool is not None
        return pool
    raise error  # outside the handler: see open_connection
