"""A DATABASE_URL naming several PostgreSQL hosts (docs/postgres-failover.md), through a service's own pool.

The first test needs only the test run's server: its first host is a closed port. The second starts a throw-away
primary and a synchronous hot standby of its own (initdb, pg_basebackup -R, as the postgres OS user) in a temporary
directory: the standby is listed first and skipped, a commit waits for the standby, and after the primary crashed
and the standby was promoted the same URL reaches the promoted server, where the committed command is found.
"""

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import asyncpg
import pytest

from shared import db, inbox, loops
from shared.contracts.envelope import Event, Reply
from shared.outbox import Relay
from shared.settings import ServiceSettings, load
from tests.support.forward import first_host
from tests.support.infra import Infra
from tests.support.stack import eventually, free_port

ORG = "org-failover"
DONE = Reply(status=200, body={"status": "contacted"})


def through(url: str, *hosts: str) -> str:
    """`url` with its host replaced by `hosts` (host:port, tried in order) and target_session_attrs=read-write."""
    parts = urlsplit(url)
    credentials, at, _ = parts.netloc.rpartition("@")
    query = "&".join(q for q in (parts.query, "target_session_attrs=read-write") if q)
    return urlunsplit(parts._replace(netloc=f"{credentials}{at}{','.join(hosts)}", query=query))


async def command(pool: asyncpg.Pool, message_id: str) -> None:
    """A command's writes as the pipeline makes them (shared/consumer.py): its event in the outbox and its inbox
    row, in one transaction; `inbox.AlreadyDone` when the message id is known (a redelivery)."""
    event = Event(type="lead.contacted", org_id=ORG, command_id=message_id, data={})
    async with db.transaction(pool) as conn:
        await inbox.record(conn, message_id, ORG, "leads.contact", "print", DONE, [event])


async def server_port(pool: asyncpg.Pool) -> int | None:
    """The port of the server a pool connection reaches now; None while none can be had."""
    try:
        return await pool.fetchval("SELECT inet_server_port()")
    except db.ERRORS:
        return None


async def test_a_service_pool_skips_a_closed_first_host(infra: Infra, monkeypatch: pytest.MonkeyPatch) -> None:
    host, port = first_host(infra.database_url)
    url = through(infra.database_url, f"127.0.0.1:{free_port()}", f"{host}:{port}")  # nothing listens on the first
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("APP_ENV", "development")
    settings = load(ServiceSettings)  # the settings take it as it is
    name = f"failover_{uuid4().hex[:8]}"
    pool = await db.create_pool(settings.database_url, name, size=2)
    try:
        await db.migrate(pool, name, [db.SHARED_MIGRATIONS])
        assert await server_port(pool) == port
        await command(pool, "m-1")
        with pytest.raises(inbox.AlreadyDone):
            await command(pool, "m-1")
        await pool.expire_connections()  # connections made again go through the list again
        assert await server_port(pool) == port
        # The relay's LISTEN connection takes the same URL, and its events go out.
        published: list[str] = []

        async def publish(routing_key: str, body: bytes, *_: object) -> None:
            published.append(routing_key)

        relay = Relay(pool, settings.database_url, name, publish, poll_seconds=0.01)
        try:
            await relay.cycle()
            assert relay._listener is not None and not relay._listener.is_closed()
        finally:
            await relay.close()
        assert published == ["lead.contacted"]
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await pool.execute(f'DROP SCHEMA "{name}" CASCADE')
        await pool.close()


# --- a primary and a synchronous standby of our own ---


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_basebackup"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def refusal() -> str | None:
    if os.geteuid() != 0:
        return "starts PostgreSQL servers as the postgres OS user (runuser): needs root"
    if postgres_bin() is None or shutil.which("runuser") is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin, or no runuser"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres OS user"
    return None


class Server:
    """One PostgreSQL server in `root`/`name`, run as the postgres OS user, on 127.0.0.1:`port`."""

    def __init__(self, root: Path, binaries: Path, name: str, *settings: str):
        self.root, self.binaries, self.name, self.port, self.data = root, binaries, name, free_port(), root / name
        self.options = [f"port={self.port}", "listen_addresses=127.0.0.1", f"unix_socket_directories={root}"]
        self.options += ["fsync=off", *settings]  # (a throw-away: nothing to keep through a power cut)

    def run(self, *args: str) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.binaries / args[0]), *args[1:]],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            log = self.root / f"{self.name}.log"
            raise RuntimeError(f"{args[0]} failed: {done.stderr}{log.read_text() if log.exists() else ''}")

    def pg_ctl(self, *args: str) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-w", *args)

    def start(self) -> None:
        options = " ".join(f"-c {option}" for option in self.options)
        self.pg_ctl("-l", str(self.root / f"{self.name}.log"), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def pair() -> Iterator[tuple[Server, Server]]:
    """A primary with database crm, and a hot standby streaming from it (cluster_name: its application_name)."""
    binaries = postgres_bin()
    if (why := refusal()) or binaries is None:
        pytest.skip(why or "no PostgreSQL server binaries")
    root = Path(tempfile.mkdtemp(prefix="crm-failover-"))
    shutil.chown(root, "postgres", "postgres")
    primary, standby = Server(root, binaries, "primary"), Server(root, binaries, "standby", "cluster_name=standby")
    try:
        primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "--auth=trust", "--no-sync")
        primary.start()
        primary.run("psql", "-d", primary.url(), "-qAtc", "CREATE DATABASE crm")
        primary.run("pg_basebackup", "-d", primary.url(), "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast")
        standby.start()
        yield primary, standby
    finally:
        for server in (standby, primary):
            if (server.data / "postmaster.pid").exists():
                with suppress(RuntimeError, subprocess.TimeoutExpired):
                    server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def equals(check: Callable[[], Awaitable[object]], expected: object) -> Callable[[], Awaitable[bool]]:
    async def test() -> bool:
        return await check() == expected

    return test


async def sql(server: Server, query: str) -> object:
    conn = await asyncpg.connect(server.url("crm"), timeout=5)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


@pytest.fixture
async def pool_through(pair: tuple[Server, Server]) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    primary, standby = pair
    # The standby first: read-write must skip it.
    url = through(primary.url("crm"), f"127.0.0.1:{standby.port}", f"127.0.0.1:{primary.port}")
    pool = await db.create_pool(url, "leads", size=2)
    try:
        yield pool, url
    finally:
        pool.terminate()


async def test_read_write_skips_the_standby_and_follows_its_promotion(
    pair: tuple[Server, Server], pool_through: tuple[asyncpg.Pool, str]
) -> None:
    primary, standby = pair
    pool, url = pool_through
    assert await pool.fetchval("SELECT pg_is_in_recovery()") is False
    assert await server_port(pool) == primary.port
    assert await sql(standby, "SELECT pg_is_in_recovery()") is True

    # The standby made synchronous (docs/postgres-failover.md): a commit returns once the standby has it.
    await sql(primary, "ALTER SYSTEM SET synchronous_standby_names = 'standby'")
    await sql(primary, "SELECT pg_reload_conf()")
    sync = "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'"
    await eventually(equals(lambda: sql(primary, sync), "sync"), what="the standby synchronous")
    await db.migrate(pool, "leads", [db.SHARED_MIGRATIONS])
    await command(pool, "m-1")

    # With the standby away, a commit waits (unseen by anyone) until it is back: never cancelled here, for a
    # cancelled wait leaves the commit on the primary alone.
    await asyncio.to_thread(standby.stop)
    waiting = asyncio.create_task(command(pool, "m-2"))
    in_sync_rep = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
    await eventually(lambda: sql(primary, in_sync_rep), what="a commit waiting for the standby")
    assert not waiting.done()
    assert await sql(primary, "SELECT count(*) FROM leads.inbox WHERE message_id = 'm-2'") == 0
    await asyncio.to_thread(standby.start)
    await asyncio.wait_for(waiting, timeout=10)

    # The primary crashes. Until the standby is promoted no host takes writes: a service waits (shared/loops.py).
    await asyncio.to_thread(primary.stop, "immediate")
    with pytest.raises((OSError, asyncpg.TargetServerAttributeNotMatched)) as away:  # (refused; or a standby)
        await asyncpg.connect(url, timeout=5)
    assert loops.unreachable(away.value), repr(away.value)
    assert await server_port(pool) is None

    await asyncio.to_thread(standby.pg_ctl, "promote")
    await eventually(equals(lambda: server_port(pool), standby.port), what="the pool on the promoted standby")
    assert await pool.fetchval("SELECT pg_is_in_recovery()") is False
    # What was committed before the crash is there: both commands' redeliveries are deduplicated.
    for message_id in ("m-1", "m-2"):
        with pytest.raises(inbox.AlreadyDone):
            await command(pool, message_id)
    await command(pool, "m-3")
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 3
