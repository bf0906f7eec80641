"""SIGTERM and Ctrl-C stop ``codeatlas index-tree`` cleanly, and with it its embedded server.

Real subprocesses on an embedded server of their own (a fresh data directory), signalled
while they index; the server must be stopped afterwards unless another process uses it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from codeatlas._server import data_usage, get_embedded_server

FILES = 400


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory for the module's runs (each leaves its server stopped)."""
    return tmp_path_factory.mktemp("signals-pg") / "pgdata"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("signals") / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    body = "".join(f'def f{j}(x):\n    """Add {j}."""\n    return x + {j}\n\n' for j in range(8))
    for i in range(FILES):
        (root / f"m{i}.py").write_text(f'"""Module {i}."""\nfrom . import m0\n\n{body}')
    return root


def start(data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEATLAS_")}
    env["CODEATLAS_DATA_DIR"] = str(data_dir)
    # a session of its own, so a signal to its process group is what Ctrl-C in a terminal
    # sends: the command and its parser processes at once
    return subprocess.Popen(
        [sys.executable, "-m", "codeatlas.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )


async def wait_until_indexing(
    data_dir: Path, process: subprocess.Popen[bytes], codebase_id: str
) -> None:
    """Return once the run registered *codebase_id* as analyzing (it is mid-run then)."""
    query = "SELECT analysis_status FROM codebase_registry WHERE codebase_id = $1"
    for _ in range(1200):
        assert process.poll() is None, "the run ended before it could be signalled"
        await asyncio.sleep(0.05)
        try:
            lines = (data_dir / "postmaster.pid").read_text().splitlines()
            connection = await asyncpg.connect(
                host=lines[4], port=int(lines[3]), user="postgres", database="codeatlas"
            )
        except (OSError, IndexError, ValueError, asyncpg.PostgresError):
            continue
        try:
            status = await connection.fetchval(query, codebase_id)
        except asyncpg.PostgresError:  # not migrated yet
            status = None
        finally:
            await connection.close()
        if status == "analyzing":
            return
    raise AssertionError("the run never started indexing")


async def wait_for_workers(process: subprocess.Popen[bytes]) -> None:
    """Return once the run has started its parser processes (spawned Pythons)."""
    for _ in range(1200):
        assert process.poll() is None, "the run ended before its parser processes started"
        if _spawned_children(process.pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no parser process started")


def _spawned_children(pid: int) -> bool:
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                return True
        except OSError:  # gone meanwhile
            continue
    return False


async def stop(process: subprocess.Popen[bytes], how: str) -> tuple[int, str]:
    if how == "SIGINT to the process group":
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGTERM)
    return await finish(process)


async def finish(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    """Wait for *process* (killed if still running) and read its pipes to the end."""
    try:
        _, err = await asyncio.to_thread(process.communicate, timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, err.decode()


@pytest.mark.parametrize(
    ("how", "code", "line"),
    [
        ("SIGTERM", 143, "stopped (SIGTERM)"),
        ("SIGINT to the process group", 130, "stopped (SIGINT)"),
    ],
)
async def test_a_signalled_index_run_exits_cleanly_and_stops_its_server(
    tree: Path, data_dir: Path, how: str, code: int, line: str
) -> None:
    cid = f"sig-{code}"
    process = start(data_dir, "index-tree", str(tree), "--codebase-id", cid, "--workers", "2")
    try:
        await wait_until_indexing(data_dir, process, cid)
        if how == "SIGINT to the process group":  # the parser processes get it too
            await wait_for_workers(process)
    finally:
        returncode, err = await stop(process, how)
    # 128 + the signal: the process exited itself (a signal's death would be -15 or -2)
    assert returncode == code, err
    assert err.strip().splitlines() == [line], err  # no traceback, no worker noise
    usage = data_usage(data_dir)
    assert usage.exists and usage.server_pid is None and usage.attached_pids == ()


async def test_a_killed_process_no_longer_keeps_the_server_running(data_dir: Path) -> None:
    assert (await finish(start(data_dir, "migrate")))[0] == 0
    # a process that attached and was SIGKILLed: it never detached
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    (data_dir / ".handle_pids.json").write_text(json.dumps([dead.pid]))
    assert (await finish(start(data_dir, "status")))[0] == 0
    usage = data_usage(data_dir)
    assert usage.server_pid is None and usage.attached_pids == ()
    assert json.loads((data_dir / ".handle_pids.json").read_text()) == []


async def test_a_terminated_run_leaves_a_server_another_process_uses_running(
    tree: Path, data_dir: Path
) -> None:
    # last of the module: the server then runs until this test process exits
    server = get_embedded_server(data_dir)  # this process uses it too (stopped at its exit)
    process = start(data_dir, "index-tree", str(tree), "--codebase-id", "shared", "--workers", "0")
    try:
        await wait_until_indexing(data_dir, process, "shared")
    finally:
        returncode, err = await stop(process, "SIGTERM")
    assert returncode == 143, err
    usage = data_usage(data_dir)
    assert usage.server_pid == server.pid and usage.attached_pids == (os.getpid(),)
    connection = await asyncpg.connect(server.dsn("codeatlas"))
    try:  # the run was cut short: marked failed, not left "analyzing"
        status = await connection.fetchval(
            "SELECT analysis_status FROM codebase_registry WHERE codebase_id = $1", "shared"
        )
    finally:
        await connection.close()
    assert status == "failed"
