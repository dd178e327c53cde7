"""Hostile and broken input at the websocket: a bad hello is refused with 4400 and says why; patterns made
to be slow do not hold up the gateway; resumes beyond the replay caps are told to come back later (1013)."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable
from uuid import uuid4

import aio_pika
import aiohttp
import pytest

from services.gateway.auth import issue
from tests.conftest import Api
from tests.e2e.test_websocket import closed_with
from tests.support.realtime import envelope, publish_events
from tests.support.stack import TEST_SECRET, Stack, free_port, wait_http

TOO_MANY = 1013


def hello(token: str, fields: dict) -> str:
    """A good hello with `fields` replaced; a field given as ... is left out."""
    message = {"type": "hello", "token": token, "topics": ["leads.*"], **fields}
    return json.dumps({k: v for k, v in message.items() if v is not ...})


# (what is wrong, the hello's fields, a word the close reason must say)
BAD_HELLOS = [
    ("no type", {"type": ...}, "type"),
    ("another type", {"type": "subscribe"}, "type"),
    ("topics not a list", {"topics": "leads.*"}, "topics"),
    ("no topics", {"topics": []}, "topics"),
    ("33 topics", {"topics": [f"leads.t{n}" for n in range(33)]}, "32"),
    ("a topic not a string", {"topics": ["leads.*", 7]}, "topics.1"),
    ("an empty topic", {"topics": [""]}, "topics.0"),
    ("an empty word", {"topics": ["leads..created"]}, "empty"),
    ("a trailing dot", {"topics": ["leads."]}, "empty"),
    ("256 characters", {"topics": ["a" * 256]}, "255"),
    ("17 words", {"topics": [".".join(["a"] * 17)]}, "16"),
    ("a token not a string", {"token": 12345}, "token"),
    ("resume not an object", {"resume": "e:3"}, "resume"),
    ("a position that is a bool", {"resume": {"epoch": "e", "position": True}}, "position"),
    ("a position that is a string", {"resume": {"epoch": "e", "position": "3"}}, "position"),
    ("a position that is a float", {"resume": {"epoch": "e", "position": 1.5}}, "position"),
    ("a position below -1", {"resume": {"epoch": "e", "position": -2}}, "position"),
    ("no position", {"resume": {"epoch": "e"}}, "position"),
    ("an epoch not a string", {"resume": {"epoch": 5, "position": 3}}, "epoch"),
]


@pytest.mark.parametrize(("fields", "says"), [case[1:] for case in BAD_HELLOS], ids=[case[0] for case in BAD_HELLOS])
async def test_a_bad_hello_closes_with_4400_and_says_what_is_wrong(api: Api, fields: dict, says: str) -> None:
    code, reason = await closed_with(api, hello(api.token, fields))
    assert code == 4400
    assert says in reason and len(reason.encode()) <= 123, reason


@pytest.mark.parametrize(
    ("first", "says"),
    [
        ("not json", "JSON"),
        ("[" * 100_000, "JSON"),  # nested too deep for the decoder
        ('["hello"]', "object"),
        ("null", "object"),
        (b'{"type": "hello"}', "text"),
    ],
    ids=["not JSON", "deeply nested", "an array", "null", "a binary frame"],
)
async def test_what_is_no_hello_at_all_closes_with_4400(api: Api, first: str | bytes, says: str) -> None:
    code, reason = await closed_with(api, first)
    assert code == 4400 and says in reason, reason


def slow_patterns(salt: str) -> list[str]:
    """32 patterns of 16 words that make a backtracking matcher try every split of a long topic (none matches
    `a.a.….a`), unique to `salt` so that no cache of patterns helps; the last one matches."""
    hashes = ["#." * 15 + f"x{salt}{n}" for n in range(16)]
    mixed = [".".join(["a", "#"] * 7 + ["b", f"y{salt}{n}"]) for n in range(15)]
    return [*hashes, *mixed, "#." * 15 + "a"]


async def worst_latency(http: aiohttp.ClientSession, url: str, until: Awaitable[object]) -> float:
    """The slowest of the /healthz requests made one after another until `until` is done."""
    done = asyncio.ensure_future(until)
    worst = 0.0
    try:
        while not done.done():
            started = time.monotonic()
            async with http.get(url + "/healthz", timeout=aiohttp.ClientTimeout(total=10)) as response:
                assert response.status == 200
            worst = max(worst, time.monotonic() - started)
            await asyncio.wait({done}, timeout=0.05)  # the pace of the probe, not a wait for a condition
        await done
    finally:
        done.cancel()
    return worst


async def test_patterns_made_to_be_slow_do_not_hold_up_the_gateway(
    api: Api, org: str, amqp: aio_pika.abc.AbstractChannel
) -> None:
    topic = ".".join(["a"] * 12)  # a routing key any system on the broker may publish with
    sockets: list[aiohttp.ClientWebSocketResponse] = []

    async def connect_then_hear_an_event() -> None:
        for n in range(4):
            ws = await api.http.ws_connect(api.url.replace("http", "ws") + "/ws")
            sockets.append(ws)
            await ws.send_json({"type": "hello", "token": api.token, "topics": slow_patterns(f"{n}{uuid4().hex[:6]}")})
            assert (await ws.receive_json(timeout=20))["type"] == "welcome"
        event = envelope(org, topic, n=1)
        await publish_events(amqp, [event])
        for ws in sockets:  # each gets the event: its last pattern matches
            while (frame := await ws.receive_json(timeout=20))["type"] != "event":
                pass
            assert (frame["id"], frame["topic"]) == (event["id"], topic)

    try:
        worst = await worst_latency(api.http, api.url, connect_then_hear_an_event())
    finally:
        for ws in sockets:
            await ws.close()
    assert worst < 1.0, f"a /healthz request took {worst:.2f} s"


async def resumed(http: aiohttp.ClientSession, url: str, token: str, resume: dict) -> tuple[int | str, object]:
    """("welcome", the welcome) or (close code, reason) for a hello that resumes from `resume`."""
    async with http.ws_connect(url.replace("http", "ws") + "/ws") as ws:
        await ws.send_json({"type": "hello", "token": token, "topics": ["#"], "resume": resume})
        message = await ws.receive(timeout=20)
        if message.type == aiohttp.WSMsgType.TEXT:
            return "welcome", json.loads(message.data)
        assert message.type == aiohttp.WSMsgType.CLOSE, message
        return message.data, message.extra


async def settled(tasks: list[asyncio.Task], count: int, timeout: float = 20) -> None:
    """Until `count` of `tasks` are done (a refusal comes at once, a welcome after the wait for the head)."""
    async with asyncio.timeout(timeout):
        while sum(task.done() for task in tasks) < count:
            await asyncio.wait([task for task in tasks if not task.done()], return_when=asyncio.FIRST_COMPLETED)


@pytest.fixture(scope="module")
async def capped(stack: Stack) -> AsyncIterator[str]:
    """The URL of a gateway of its own with small replay caps: 4 at once, 2 per user."""
    port = free_port()
    process = stack.start(
        "gateway-capped", "services.gateway", GATEWAY_PORT=str(port), WS_MAX_REPLAYS="4", WS_MAX_REPLAYS_PER_USER="2"
    )
    try:
        await wait_http(f"http://127.0.0.1:{port}/readyz", 30, "the capped gateway")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


async def head(http: aiohttp.ClientSession, url: str, token: str) -> dict:
    """Where the log ends now: the welcome of a resume of another epoch (it takes no replay slot)."""
    _, welcome = await resumed(http, url, token, {"epoch": "none", "position": 0})
    return {"epoch": welcome["epoch"], "position": welcome["position"]}  # type: ignore[index]


def past(resume: dict) -> dict:
    """A position this gateway has not read: the resume waits 2 s for it, holding its replay slot."""
    return {**resume, "position": resume["position"] + 1_000_000}


async def test_resumes_beyond_the_replay_caps_are_told_to_come_back_later(
    org: str, http: aiohttp.ClientSession, capped: str
) -> None:
    first, second, other_org = (
        issue(TEST_SECRET, org, "u1"),
        issue(TEST_SECRET, org, "u2"),
        issue(TEST_SECRET, f"{org}-b", "u1"),
    )  # (org, user) is the user: not u1
    ahead = past(await head(http, capped, first))
    mine = [asyncio.create_task(resumed(http, capped, token, ahead)) for token in (first, first, first, second)]
    await settled(mine, 1)  # the refused one, at once
    theirs_tasks = [asyncio.create_task(resumed(http, capped, other_org, ahead)) for _ in range(3)]
    await settled(theirs_tasks, 2)
    assert sum(task.done() for task in mine + theirs_tasks) == 3, "the first slots were free too soon"
    mine_done, theirs = await asyncio.gather(*mine), await asyncio.gather(*theirs_tasks)

    firsts = sorted(str(outcome[0]) for outcome in mine_done[:3])
    assert firsts == [str(TOO_MANY), "welcome", "welcome"], mine_done  # 2 per user
    assert mine_done[3][0] == "welcome"  # another user of the same organisation
    assert all("user" in str(reason) for code, reason in mine_done if code == TOO_MANY)
    # 3 slots held of the gateway's 4: one more resume is served, whoever asks
    assert sorted(str(code) for code, _ in theirs) == [str(TOO_MANY), str(TOO_MANY), "welcome"], theirs
    assert all("gateway" in str(reason) for code, reason in theirs if code == TOO_MANY)
    # Once the slots are free, a client that comes back is served.
    assert (await resumed(http, capped, first, ahead))[0] == "welcome"


async def test_a_resume_at_the_head_takes_no_replay_slot(org: str, http: aiohttp.ClientSession, capped: str) -> None:
    token = issue(TEST_SECRET, org, "u1")
    ahead = past(await head(http, capped, token))
    waiting = [asyncio.create_task(resumed(http, capped, token, ahead)) for _ in range(3)]
    await settled(waiting, 1)
    (refused,) = [task for task in waiting if task.done()]
    assert refused.result()[0] == TOO_MANY  # the other two hold the user's slots, for 2 s
    code, served = await resumed(http, capped, token, await head(http, capped, token))
    assert code == "welcome" and served["recovered"] is True, served  # type: ignore[index]
    assert [(await task)[0] for task in waiting if task is not refused] == ["welcome", "welcome"]
