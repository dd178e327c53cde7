"""Operate a service's parking queue: list, replay or purge parked commands.

    python -m shared.tools.parked list   --service leads
    python -m shared.tools.parked replay --service leads [--id MESSAGE_ID]
    python -m shared.tools.parked purge  --service leads

Replay puts a message back on the service's work queue with its attempt count
reset, under its original message id: the inbox still guarantees one effect.
A message is removed from the parking queue only after the broker confirmed
its republication.
"""

import argparse
import asyncio
import json
import sys
from typing import Any

import aio_pika

from shared.contracts.envelope import Header
from shared.identity import own_user
from shared.settings import CommonSettings, load
from shared.topology import ServiceTopology

RESET = (Header.ATTEMPT, Header.LAST_ERROR, Header.PARKED_REASON, Header.PARKED_AT)


def describe(message: aio_pika.abc.AbstractIncomingMessage) -> dict[str, Any]:
    headers = message.headers or {}
    return {
        "message_id": message.message_id,
        "command": headers.get(Header.ROUTING_KEY),
        "org": headers.get(Header.ORG),
        # The attempt count is ours (an int): a header of another type fails here, loudly, as it should.
        "attempts": int(headers.get(Header.ATTEMPT, 2)) - 1,  # type: ignore[arg-type]  # a header: any AMQP value
        "reason": headers.get(Header.PARKED_REASON),
        "parked_at": headers.get(Header.PARKED_AT),
    }


async def drain(queue: aio_pika.abc.AbstractQueue) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take every parked message without acking: closing the channel puts back whatever was not acked."""
    taken = []
    while (message := await queue.get(no_ack=False, fail=False)) is not None:
        taken.append(message)
    return taken


async def replay(
    channel: aio_pika.abc.AbstractChannel, work_queue: str, message: aio_pika.abc.AbstractIncomingMessage, user: str
) -> None:
    """Back to the work queue as `user` (this tool's broker user: a platform user, shared/identity.py)."""
    headers = {k: v for k, v in (message.headers or {}).items() if k not in RESET}
    copy = aio_pika.Message(
        message.body,
        headers=headers,
        message_id=message.message_id,
        user_id=user,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    await channel.default_exchange.publish(copy, routing_key=work_queue)
    await message.ack()


async def main(action: str, service: str, only: str | None) -> int:
    settings = load(CommonSettings)
    topology = ServiceTopology(service, ())
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(
            topology.parked.name, durable=True, arguments=topology.parked.declare_arguments
        )
        if action == "purge":
            result = await queue.purge()
            print(json.dumps({"purged": result.message_count}))
            return 0
        count = 0
        for message in await drain(queue):
            if only and message.message_id != only:
                continue
            print(json.dumps(describe(message)))
            if action == "replay":
                await replay(channel, topology.work.name, message, own_user(settings.amqp_url))
            count += 1
        print(json.dumps({action if action == "list" else "replayed": count}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["list", "replay", "purge"])
    parser.add_argument("--service", required=True)
    parser.add_argument("--id", help="only this message id")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.action, args.service, args.id)))
