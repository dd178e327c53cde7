"""Header and property fuzz: whatever a publisher puts in a command's headers or properties is answered (422
`/problems/invalid`, or 403) or ignored, never a stalled consumer. Each case is followed by a good command that
must be answered 200 within seconds, and at the end no queue holds a message, acknowledged or not.

Values aio-pika refuses to send (a long string that is not UTF-8, 2^63, a timestamp past 9999, a short string
that is not UTF-8) are written raw (tests/support/raw_amqp.py). A header of 1 MB cannot reach a consumer: the
broker refuses any frame over its frame_max (128 kB), closing the publisher's connection; the largest header
that fits (120 kB) is tried instead, and the 1 MB one is shown to be refused at the broker.
"""

from dataclasses import dataclass, field
from uuid import uuid4

import aio_pika
import pytest

from shared.buttons import BUTTONS
from tests.support import infra as infra_mod
from tests.support import raw_amqp
from tests.support.broker import Probe
from tests.support.stack import Stack, eventually

raw_amqp.install()
KNOWN_HEADERS = ("x-org-id", "x-user-id", "x-attempt", "x-routing-key", "x-last-error", "traceparent")
VALUES: dict[str, object] = {
    "table": {"a": 1},
    "array": [1, "b"],
    "bytes": bytearray(b"\xff\xfe"),
    "not UTF-8": raw_amqp.long_string(b"\xff\xfe"),
    "None": None,
    "bool": True,
    "float": 1.5,
    "negative": -1,
    "2^63": raw_amqp.long_long(2**63),
    "2^63-1": 2**63 - 1,
    "120 kB": "x" * 120_000,
    "timestamp past 9999": raw_amqp.timestamp(2**64 - 1),
}
# A header whose value is absent (None) is no refusal for those that are optional.
OPTIONAL_NONE = {"x-routing-key", "x-last-error"}  # (x-attempt: a void is no attempt number: refused)


@dataclass(frozen=True)
class Case:
    id: str
    headers: dict[str, object] = field(default_factory=dict)  # added to (or replacing) the good ones
    properties: dict[str, object] = field(default_factory=dict)  # raw, past aio-pika's conversions
    expect: str = "refused"  # refused (4xx, /problems/invalid when `invalid`), ok (200), unanswered
    invalid: bool = True


def header_cases() -> list[Case]:
    cases = []
    for name in KNOWN_HEADERS:
        for what, value in VALUES.items():
            if what == "None" and name in OPTIONAL_NONE:
                cases.append(Case(f"{name}={what}", {name: value}, expect="ok"))
            elif what == "None":  # the organisation or the user missing: refused, as a message without them
                cases.append(Case(f"{name}={what}", {name: value}, invalid=False))
            else:
                cases.append(Case(f"{name}={what}", {name: value}))
    cases += [Case(f"x-other={what}", {"x-other": value}, expect="ok") for what, value in VALUES.items()]
    cases += [
        Case("x-attempt=0", {"x-attempt": 0}),
        Case("x-attempt=past the last", {"x-attempt": 5}),
        Case("x-attempt='2'", {"x-attempt": "2"}),
        Case("x-org-id=NUL", {"x-org-id": "a\x00b"}),
    ]
    return cases


def short(data: bytes) -> raw_amqp.Raw:
    return raw_amqp.short_string(data)


PROPERTY_CASES = [
    Case("message_id not UTF-8", properties={"message_id": short(b"\xff\xfe")}),
    Case("message_id empty", properties={"message_id": short(b"")}, invalid=False),
    Case("message_id control characters", properties={"message_id": short(b"a\x00b")}),
    Case("message_id 254 bytes of text", properties={"message_id": short(("\u00e9" * 127).encode())}, expect="ok"),
    Case("correlation_id not UTF-8", properties={"correlation_id": short(b"\xff")}, expect="unanswered"),
    Case("reply_to not UTF-8", properties={"reply_to": short(b"\xfe\xff")}, expect="unanswered"),
    Case("reply_to a queue that is not there", properties={"reply_to": short(b"nobody.replies")}, expect="unanswered"),
    Case(
        "reply_to a direct reply-to of nobody",
        properties={"reply_to": short(b"amq.rabbitmq.reply-to.g2dkAA")},
        expect="unanswered",
    ),
    Case("reply_to control characters", properties={"reply_to": short(b"q\x01")}, expect="unanswered"),
    Case("content_type text/plain", properties={"content_type": short(b"text/plain")}),
    Case("content_type application/xml", properties={"content_type": short(b"application/xml")}),
    Case("content_type not UTF-8", properties={"content_type": short(b"\xff")}),
    Case(
        "content_type JSON with a charset",
        properties={"content_type": short(b"application/json; charset=utf-8")},
        expect="ok",
    ),
    Case("content_encoding gzip", properties={"content_encoding": short(b"gzip")}),
    Case("content_encoding not UTF-8", properties={"content_encoding": short(b"\x80")}),
    Case("content_encoding utf-8", properties={"content_encoding": short(b"utf-8")}, expect="ok"),
    Case("no user_id", properties={"user_id": None}, invalid=False),
    Case("timestamp past 9999", properties={"timestamp": raw_amqp.timestamp(2**64 - 1)}, expect="ok"),
    Case(
        "type and app_id not UTF-8", properties={"message_type": short(b"\xff"), "app_id": short(b"\xfe")}, expect="ok"
    ),
    Case("a header's name not UTF-8", properties={"headers": None}, expect="ok"),  # headers given below
]
CASES = header_cases() + PROPERTY_CASES


@pytest.fixture(scope="module")
async def lead(probe_module: Probe) -> str:
    correlation_id = await probe_module.send(
        "leads.create", {"name": "Fuzz Target", "phone": "+14155550100"}, org=ORG, message_id=str(uuid4())
    )
    (reply,) = await probe_module.reply(correlation_id)
    assert reply.status == 201, reply
    return reply.body["lead"]["id"]


ORG = f"org-fuzz-{uuid4().hex[:6]}"


@pytest.fixture(scope="module")
async def probe_module(infra: infra_mod.Infra, stack: Stack) -> Probe:
    connection = await aio_pika.connect(infra.amqp_url)
    probe = await Probe(await connection.channel(), broker_user=(infra.amqp_url.split("//")[1].split(":")[0])).start()
    yield probe
    await connection.close()


async def publish(probe: Probe, case: Case, lead: str) -> str:
    correlation_id = uuid4().hex
    headers: dict[str, object] = {"x-org-id": ORG, "x-user-id": "fuzzer", **case.headers}
    properties = dict(case.properties)
    if case.id == "a header's name not UTF-8":
        properties["headers"] = raw_amqp.table_with_name(b"\xff\xfe")
        headers = {}  # the table is written whole: no organisation, so it is refused... unless read as ignored
    body = f'{{"leadId": "{lead}", "status": "new"}}'.encode()
    message = raw_amqp.RawMessage(
        body,
        properties,
        message_id=str(uuid4()),
        correlation_id=correlation_id,
        reply_to=probe.reply_queue,
        headers=headers,
        user_id=probe.broker_user,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    exchange = await probe.channel.get_exchange("commands")
    await exchange.publish(message, "leads.update_status")
    return correlation_id


async def good_command_answered(probe: Probe, lead: str) -> None:
    correlation_id = await probe.send(
        "leads.update_status", {"leadId": lead, "status": "new"}, org=ORG, message_id=str(uuid4())
    )
    (after,) = await probe.reply(correlation_id, timeout=10)
    assert after.status == 200, after


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_a_hostile_header_or_property_is_answered_and_the_queue_flows(
    probe_module: Probe, lead: str, stack: Stack, case: Case
) -> None:
    if case.id == "a header's name not UTF-8":
        case = Case(case.id, properties=case.properties, invalid=False)  # no x-org-id left: refused as lacking it
    correlation_id = await publish(probe_module, case, lead)
    if case.expect != "unanswered":
        (reply,) = await probe_module.reply(correlation_id, timeout=10)
        if case.expect == "ok":
            assert reply.status == 200, (case.id, reply)
        else:
            assert 400 <= reply.status < 500 and reply.body["detail"], (case.id, reply)
            if case.invalid:
                assert (reply.status, reply.body["type"]) == (422, "/problems/invalid"), (case.id, reply.body)
    await good_command_answered(probe_module, lead)
    assert stack.processes["leads"].running


async def test_a_header_of_a_megabyte_is_refused_by_the_broker_and_nothing_here_notices(
    probe_module: Probe, lead: str, infra: infra_mod.Infra
) -> None:
    connection = await aio_pika.connect(infra.amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange("commands")
        with pytest.raises(Exception) as refused:
            await exchange.publish(
                aio_pika.Message(b"{}", headers={"x-org-id": "x" * 1024 * 1024}), "leads.update_status"
            )
            await eventually(lambda: connection.is_closed, 10, what="the broker to close the publisher")
            await channel.get_exchange("commands")  # the connection is gone: this raises
        assert "frame" in repr(refused.value).lower() or connection.is_closed
    finally:
        if not connection.is_closed:
            await connection.close()
    await good_command_answered(probe_module, lead)


async def test_forty_commands_with_a_table_for_x_attempt_stall_nothing(
    probe_module: Probe, lead: str, stack: Stack
) -> None:
    """The issue's attack: more bad messages than the prefetch (32) used to hold every slot for good."""
    cases = [Case("table", {"x-attempt": {"a": 1}}), Case("array", {"x-attempt": [1]})] * 20
    ids = [await publish(probe_module, case, lead) for case in cases]
    for correlation_id in ids:
        (reply,) = await probe_module.reply(correlation_id, timeout=15)
        assert (reply.status, reply.body["type"]) == (422, "/problems/invalid")
    await good_command_answered(probe_module, lead)


async def test_no_queue_holds_a_message_at_the_end(probe_module: Probe, infra: infra_mod.Infra) -> None:
    services = sorted({b.service for b in BUTTONS})
    watched = {f"{s}.{kind}" for s in services for kind in ("commands", "queries")}

    async def drained() -> dict[str, tuple[int, int]] | bool:
        left = {
            name: counts
            for name, counts in (await infra_mod.queues(infra)).items()
            if name in watched and counts != (0, 0)
        }
        return not left

    await eventually(drained, 30, 0.5, "every work and query queue to hold no message, acked or not")
