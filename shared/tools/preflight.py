"""Before `make run`: are the broker and the database reachable? One line each if not.

Creates the database named in DATABASE_URL when the server is up but the
database does not exist yet (a fresh machine).
"""

import asyncio
import logging
import sys
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg

from shared.settings import CommonSettings, load

HINT = "start it, or run everything with deploy/docker-compose.yml (see README)"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.split("@")[-1]
    user = parts.username or ""
    return urlunsplit(
        (
            parts.scheme,
            f"{user}:***@{netloc}" if parts.password else (f"{user}@{netloc}" if user else netloc),
            parts.path,
            "",
            "",
        )
    )


async def check_database(url: str) -> str | None:
    try:
        conn = await asyncpg.connect(url, timeout=5)
        await conn.close()
        return None
    except asyncpg.InvalidCatalogNameError:
        parts = urlsplit(url)
        admin = await asyncpg.connect(urlunsplit((parts.scheme, parts.netloc, "/postgres", "", "")), timeout=5)
        try:
            await admin.execute(f'CREATE DATABASE "{parts.path.lstrip("/")}"')
        finally:
            await admin.close()
        return None
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL is not reachable at DATABASE_URL={_redact(url)} ({exc.__class__.__name__}: {exc}); {HINT}"


async def check_broker(url: str) -> str | None:
    try:
        connection = await aio_pika.connect(url, timeout=5)
        await connection.close()
        return None
    except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as exc:
        return f"RabbitMQ is not reachable at AMQP_URL={_redact(url)} ({exc.__class__.__name__}: {exc}); {HINT}"


async def main() -> int:
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)  # our one line says it; not a traceback too
    logging.getLogger("aio_pika").setLevel(logging.CRITICAL)
    settings = load(CommonSettings)
    problems = [
        p for p in await asyncio.gather(check_database(settings.database_url), check_broker(settings.amqp_url)) if p
    ]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
