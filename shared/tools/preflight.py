"""Before `make run`: are the broker and the database reachable? One line each if not.

Creates the database named in DATABASE_URL when the server is up but the
database does not exist yet (a fresh machine).
"""

import asyncio
import logging
import sys

import aio_pika
import asyncpg

from shared.database_url import parse, redacted, with_database
from shared.settings import CommonSettings, load

HINT = "start it, or run everything with deploy/docker-compose.yml (see README)"


async def check_database(url: str) -> str | None:
    try:
        conn = await asyncpg.connect(url, timeout=5)
        await conn.close()
        return None
    except asyncpg.InvalidCatalogNameError:
        # Through the same hosts and parameters (target_session_attrs=read-write: on the primary).
        admin = await asyncpg.connect(with_database(url, "postgres"), timeout=5)
        try:
            await admin.execute(f'CREATE DATABASE "{parse(url).database}"')
        finally:
            await admin.close()
        return None
    except (OSError, asyncpg.PostgresError, asyncpg.TargetServerAttributeNotMatched, TimeoutError) as exc:
        return f"PostgreSQL is not reachable at DATABASE_URL={redacted(url)} ({exc.__class__.__name__}: {exc}); {HINT}"


async def check_broker(url: str) -> str | None:
    try:
        connection = await aio_pika.connect(url, timeout=5)
        await connection.close()
        return None
    except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as exc:
        return f"RabbitMQ is not reachable at AMQP_URL={redacted(url)} ({exc.__class__.__name__}: {exc}); {HINT}"


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
