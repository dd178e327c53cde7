"""Broker-side identity: a system publishing straight to the broker acts as its own RabbitMQ user,
and the services take its organisation from that user (BROKER_ORGS), never from a header it sets.

A stack of its own (the leads service) on a vhost of its own, with two RabbitMQ users made for the
test: `acme` (an integrating system of organisation "acme-org") and `nobody` (mapped to nothing),
each with the permissions an operator gives an integrating system (README, "Broker contract")."""

from collections.abc import AsyncIterator
from uuid import uuid4

import aio_pika
import aiormq
import asyncpg
import pytest

from shared.identity import own_user
from tests.conftest import STACK_ENV
from tests.support import infra as infra_mod
from tests.support.broker import publish_as
from tests.support.stack import Stack

# What an operator grants an integrating system: publish to `commands`, and a private reply queue.
CONFIGURE, WRITE, READ = r"^amq\.gen-.*", r"^(commands|amq\.gen-.*)$", r"^amq\.gen-.*"


@pytest.fixture(scope="module")
async def systems(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[infra_mod.Infra, dict[str, str]]]:
    infra = await infra_mod.provision()
    suffix = uuid4().hex[:8]
    users = {"acme": f"acme-{suffix}", "nobody": f"nobody-{suffix}"}
    urls = {
        role: await infra_mod.add_broker_user(infra, name, f"pw-{suffix}", CONFIGURE, WRITE, READ)
        for role, name in users.items()
    }
    stack = Stack(
        {**infra.env(), **STACK_ENV, "BROKER_ORGS": f"{users['acme']}:acme-org"}, tmp_path_factory.mktemp("identity")
    )
    try:
        stack.start("leads")
        await stack.wait_started("leads")
        yield infra, urls
    finally:
        stack.stop_all()
        for name in users.values():
            await infra_mod.delete_broker_user(infra, name)
        await infra_mod.release(infra)


async def press(url: str, org: str | None, name: str, user_id: str | None = "own") -> dict:
    """leads.create published as the user of `url`; its reply."""
    return await publish_as(url, "leads.create", {"name": name, "phone": "+14155550100"}, org, user_id)


async def orgs_of(infra: infra_mod.Infra, name: str) -> list[str]:
    conn = await asyncpg.connect(infra.database_url)
    try:
        return [r["org_id"] for r in await conn.fetch("SELECT org_id FROM leads.leads WHERE name = $1", name)]
    finally:
        await conn.close()


async def test_an_integrating_system_acts_for_its_own_organisation(systems) -> None:  # type: ignore[no-untyped-def]
    infra, urls = systems
    without, named = f"Acme {uuid4().hex[:6]}", f"Acme {uuid4().hex[:6]}"
    assert (await press(urls["acme"], None, without))["status"] == 201
    assert (await press(urls["acme"], "acme-org", named))["status"] == 201
    assert await orgs_of(infra, without) == await orgs_of(infra, named) == ["acme-org"]


async def test_naming_another_organisation_is_refused_and_changes_nothing(systems) -> None:  # type: ignore[no-untyped-def]
    infra, urls = systems
    name = f"Spoof {uuid4().hex[:6]}"
    reply = await press(urls["acme"], "victim-org", name)
    assert (reply["status"], reply["body"]["type"]) == (403, "/problems/forbidden")
    assert await orgs_of(infra, name) == []


async def test_an_unmapped_user_or_a_message_without_user_id_is_refused(systems) -> None:  # type: ignore[no-untyped-def]
    infra, urls = systems
    for url, user_id in ((urls["nobody"], "own"), (urls["acme"], None), (infra.amqp_url, None)):
        name = f"Nobody {uuid4().hex[:6]}"
        reply = await press(url, "acme-org", name, user_id)
        assert reply["status"] == 403, reply
        assert await orgs_of(infra, name) == []


async def test_a_system_cannot_claim_another_broker_user(systems) -> None:  # type: ignore[no-untyped-def]
    infra, urls = systems
    with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):  # RabbitMQ itself refuses the publish
        await press(urls["acme"], "acme-org", "Claimed", user_id=own_user(infra.amqp_url))  # the platform's user


async def test_an_integrating_system_cannot_write_events_or_queries(systems) -> None:  # type: ignore[no-untyped-def]
    _, urls = systems
    connection = await aio_pika.connect(urls["acme"])
    async with connection:
        for exchange in ("events", "queries"):
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await (await channel.get_exchange(exchange, ensure=False)).publish(
                    aio_pika.Message(b"{}", user_id=own_user(urls["acme"])), "leads.created"
                )
                await channel.close()  # the refusal comes asynchronously: closing waits for it
