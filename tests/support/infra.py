"""Isolated infrastructure for one test (or bench) run.

Every run gets its own PostgreSQL database and its own RabbitMQ vhost on the
servers named by DATABASE_URL / AMQP_URL (local defaults), so it never touches
the data of a running `make run` stack or of another run. Where neither server is
reachable but a Docker engine is, they are started with testcontainers instead.
"""

import asyncio
import json
import shutil
import subprocess
import urllib.request
from base64 import b64encode
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit
from uuid import uuid4

import aio_pika
import asyncpg

from shared.database_url import with_database
from shared.settings import DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL

if TYPE_CHECKING:
    from tests.support.cluster import Cluster


@dataclass
class Infra:
    database_url: str
    amqp_url: str
    _admin_db_url: str
    _vhost: str
    _containers: tuple = ()

    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, "AMQP_URL": self.amqp_url}


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


async def _reachable(database_url: str, amqp_url: str) -> bool:
    try:
        conn = await asyncpg.connect(with_database(database_url, "postgres"), timeout=3)
        await conn.close()
        connection = await aio_pika.connect(amqp_url, timeout=3)
        await connection.close()
        return True
    except (OSError, asyncpg.PostgresError, aio_pika.exceptions.AMQPError, TimeoutError):
        return False


def _containers() -> tuple[str, str, tuple]:
    """Fallback for machines without local servers but with Docker."""
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    pg = PostgresContainer("postgres:16-alpine", driver=None).start()
    mq = DockerContainer("rabbitmq:3.13-alpine").with_exposed_ports(5672).start()
    wait_for_logs(mq, "Server startup complete", timeout=120)
    amqp = f"amqp://guest:guest@{mq.get_container_host_ip()}:{mq.get_exposed_port(5672)}/"
    return pg.get_connection_url(), amqp, (pg, mq)


def _rabbitmqctl(amqp_url: str, containers: tuple, *args: str) -> None:
    """rabbitmqctl in the broker's container, or on this machine for a local broker;
    the management API (port 15672 of the broker's host) for a remote one."""
    broker = next((c for c in containers if "rabbitmq" in c.image), None)
    if broker is not None:
        code, output = broker.exec(["rabbitmqctl", "-q", *args])
        if code != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed in the container: {output!r}")
    elif shutil.which("rabbitmqctl") and urlsplit(amqp_url).hostname in ("127.0.0.1", "localhost", "::1"):
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)
    else:
        _management_api(amqp_url, *args)


def _management_api(amqp_url: str, action: str, *args: str) -> None:
    parts = urlsplit(amqp_url)
    admin = parts.username or "guest"
    auth = b64encode(f"{admin}:{parts.password or 'guest'}".encode()).decode()
    if action in ("set_policy", "clear_policy"):  # -p VHOST [--apply-to queues] NAME [PATTERN DEFINITION]
        vhost, name = quote(args[1], safe=""), quote(args[-3] if action == "set_policy" else args[-1], safe="")
        body = (
            {"pattern": args[-2], "definition": json.loads(args[-1]), "apply-to": "queues"}
            if action == "set_policy"
            else None
        )
        method, path = ("PUT" if body else "DELETE"), f"/policies/{vhost}/{name}"
    elif action == "set_permissions":  # -p VHOST USER CONFIGURE WRITE READ
        vhost, user, configure, write, read = quote(args[1], safe=""), quote(args[2], safe=""), *args[3:6]
        method, path, body = (
            "PUT",
            f"/permissions/{vhost}/{user}",
            {"configure": configure, "write": write, "read": read},
        )
    else:
        name = quote(args[0], safe="")
        method, path, body = {
            "add_vhost": ("PUT", f"/vhosts/{name}", None),
            "delete_vhost": ("DELETE", f"/vhosts/{name}", None),
            "add_user": ("PUT", f"/users/{name}", {"password": args[1] if len(args) > 1 else "", "tags": ""}),
            "delete_user": ("DELETE", f"/users/{name}", None),
        }[action]
    request = urllib.request.Request(
        f"http://{parts.hostname}:15672/api{path}",
        method=method,
        data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"Basic {auth}", "content-type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def _add_vhost(amqp_url: str, containers: tuple, vhost: str) -> None:
    user = urlsplit(amqp_url).username or "guest"
    _rabbitmqctl(amqp_url, containers, "add_vhost", vhost)
    _rabbitmqctl(amqp_url, containers, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")


def _list_queues(amqp_url: str, containers: tuple, vhost: str) -> list[dict]:
    """Each queue of `vhost` with its ready and unacknowledged messages (rabbitmqctl, or the management API)."""
    columns = ["name", "messages_ready", "messages_unacknowledged"]
    broker = next((c for c in containers if "rabbitmq" in c.image), None)
    if broker is not None:
        _code, output = broker.exec(["rabbitmqctl", "-q", "list_queues", "-p", vhost, *columns, "--formatter", "json"])
        return json.loads(output)
    if shutil.which("rabbitmqctl") and urlsplit(amqp_url).hostname in ("127.0.0.1", "localhost", "::1"):
        done = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", vhost, *columns, "--formatter", "json"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return json.loads(done.stdout)
    parts = urlsplit(amqp_url)
    auth = b64encode(f"{parts.username or 'guest'}:{parts.password or 'guest'}".encode()).decode()
    request = urllib.request.Request(
        f"http://{parts.hostname}:15672/api/queues/{quote(vhost, safe='')}", headers={"Authorization": f"Basic {auth}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return [{k: q.get(k, 0) for k in columns} for q in json.loads(answer.read())]


async def queues(infra: "Infra") -> dict[str, tuple[int, int]]:
    """name -> (ready, unacknowledged) for every queue of this run's vhost."""
    rows = await asyncio.to_thread(_list_queues, infra.amqp_url, infra._containers, infra._vhost)
    return {row["name"]: (int(row["messages_ready"]), int(row["messages_unacknowledged"])) for row in rows}


async def set_policy(infra: "Infra", name: str, pattern: str, definition: dict) -> None:
    """A policy on this run's vhost's queues (e.g. a parking queue that refuses every message)."""
    await asyncio.to_thread(
        _rabbitmqctl,
        infra.amqp_url,
        infra._containers,
        "set_policy",
        "-p",
        infra._vhost,
        "--apply-to",
        "queues",
        name,
        pattern,
        json.dumps(definition),
    )


async def clear_policy(infra: "Infra", name: str) -> None:
    await asyncio.to_thread(_rabbitmqctl, infra.amqp_url, infra._containers, "clear_policy", "-p", infra._vhost, name)


async def add_broker_user(infra: Infra, name: str, password: str, configure: str, write: str, read: str) -> str:
    """A RabbitMQ user with permissions on this run's vhost only (an integrating system); its AMQP URL."""
    await asyncio.to_thread(_rabbitmqctl, infra.amqp_url, infra._containers, "add_user", name, password)
    await asyncio.to_thread(
        _rabbitmqctl,
        infra.amqp_url,
        infra._containers,
        "set_permissions",
        "-p",
        infra._vhost,
        name,
        configure,
        write,
        read,
    )
    parts = urlsplit(infra.amqp_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{quote(name, safe='')}:{quote(password, safe='')}@{host}", parts.path, "", ""))


async def delete_broker_user(infra: Infra, name: str) -> None:
    with suppress(Exception):
        await asyncio.to_thread(_rabbitmqctl, infra.amqp_url, infra._containers, "delete_user", name)


async def provision(prefix: str = "crm_test") -> Infra:
    import os

    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    amqp_url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    containers: tuple = ()
    if not await _reachable(database_url, amqp_url) and shutil.which("docker"):
        database_url, amqp_url, containers = await asyncio.to_thread(_containers)
        database_url = database_url.replace("postgresql+psycopg2://", "postgresql://")
    name = f"{prefix}_{uuid4().hex[:10]}"
    admin = await _create_database(database_url, name)
    await asyncio.to_thread(_add_vhost, amqp_url, containers, name)
    return Infra(with_database(database_url, name), _with_path(amqp_url, f"/{name}"), admin, name, containers)


async def provision_on(cluster: "Cluster", prefix: str = "crm_cluster") -> Infra:
    """A database of its own on the PostgreSQL of DATABASE_URL, and a vhost on `cluster` (tests/support/cluster.py),
    reached through its load balancer. Released with `release_on`."""
    import os

    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    name = f"{prefix}_{uuid4().hex[:10]}"
    admin = await _create_database(database_url, name)
    await asyncio.to_thread(cluster.add_vhost, name)
    return Infra(with_database(database_url, name), cluster.url(name), admin, name)


async def _create_database(database_url: str, name: str) -> str:
    """Create the database `name` on the server of `database_url`; the admin URL (its `postgres` database)."""
    admin = with_database(database_url, "postgres")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin


async def drop_database(infra: Infra) -> None:
    conn = await asyncpg.connect(infra._admin_db_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{infra._vhost}" WITH (FORCE)')
    finally:
        await conn.close()


async def release_on(cluster: "Cluster", infra: Infra) -> None:
    """What `provision_on` made: the vhost (if a node still answers; it goes with the cluster anyway), the database."""
    with suppress(Exception):
        await asyncio.to_thread(cluster.delete_vhost, infra._vhost)
    await drop_database(infra)


async def release(infra: Infra) -> None:
    with suppress(Exception):
        await asyncio.to_thread(_rabbitmqctl, infra.amqp_url, infra._containers, "delete_vhost", infra._vhost)
    await drop_database(infra)
    for container in infra._containers:
        container.stop()
