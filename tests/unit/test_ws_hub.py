"""The hub's fan-out and its seam between a replay and live records, on an in-memory log."""
import asyncio
import json
import random

import pytest

from services.gateway.auth import Principal
from services.gateway.ws import TOO_MANY_REPLAYS, TOO_SLOW, Hub, Screen
from shared.contracts.realtime import Resume


class StuckSocket:
    """A socket whose reader never reads: nothing leaves its queue."""

    closed = False

    def __init__(self) -> None:
        self.close_codes: list[int] = []
        self.reasons: list[bytes] = []

    async def close(self, code: int, message: bytes = b"") -> None:
        self.close_codes.append(code)
        self.reasons.append(message)
        self.closed = True


class MemoryLog:
    """The event log in memory: records appended in order; `replay` reads from a position like a stream
    consumer (waiting at the end for more), yielding to the loop a random number of times per record."""

    def __init__(self, rng: random.Random) -> None:
        self.records: list[tuple[int, str, dict | None]] = []
        self.grew = asyncio.Event()
        self.rng = rng
        self.epoch, self.head = "e1", None  # what the hub reads of its reader
        self.ready = asyncio.Event()

    def append(self, org: str, n: int, event_id: str | None = None) -> None:
        position = len(self.records)
        self.records.append((position, "tests.tick", {"org_id": org, "id": event_id or f"{org}-{n}", "data": {"n": n}}))
        self.grew.set()

    async def _pause(self, most: int = 3) -> None:
        for _ in range(self.rng.randrange(most)):
            await asyncio.sleep(0)

    async def replay(self, start: int):  # type: ignore[no-untyped-def]
        position = start
        while True:
            while position >= len(self.records):
                self.grew.clear()
                await self.grew.wait()
            await self._pause()
            yield self.records[position]
            position += 1

    async def follow(self, hub: Hub, upto: int) -> None:
        """The live reader: every record in order, lagging behind the writer at random."""
        position = 0
        while position < upto:
            while position >= len(self.records):
                self.grew.clear()
                await self.grew.wait()
            await self._pause(6)  # the live reader may lag behind what a replay can read
            self.head = position
            hub.live(self.records[position])
            position += 1


def hub_with(log: MemoryLog | None = None, queue_size: int = 100_000) -> Hub:
    hub = Hub("s" * 40, queue_size=queue_size, hello_timeout=1, allowed_origins=set())
    hub.reader = log  # type: ignore[assignment]
    return hub


def screen(org: str = "org", queue_size: int = 100_000, user: str = "u") -> Screen:
    return Screen(StuckSocket(), Principal(user, org), ["#"], asyncio.Queue(queue_size))  # type: ignore[arg-type]


def frames(opened: Screen) -> list[dict]:
    out = []
    while not opened.queue.empty():
        out.append(json.loads(opened.queue.get_nowait()))
    return out


def live_screen(hub: Hub, org: str = "org", queue_size: int = 100_000) -> Screen:
    opened = screen(org, queue_size)
    opened.live, opened.welcomed = True, True
    hub.screens.setdefault(org, set()).add(opened)
    return opened


async def test_a_slow_screen_is_closed_and_the_others_get_every_event() -> None:
    hub = hub_with()
    slow, fast, stranger = live_screen(hub, queue_size=3), live_screen(hub), live_screen(hub, "other")
    for i in range(10):
        hub.live((i, "leads.created", {"org_id": "org", "id": str(i), "data": {}}))
    await slow.closing  # type: ignore[misc]
    assert slow.ws.close_codes == [TOO_SLOW]  # type: ignore[attr-defined]
    assert [f["position"] for f in frames(fast)] == list(range(10))
    assert frames(stranger) == []


async def test_events_without_an_organisation_and_markers_go_nowhere() -> None:
    hub = hub_with()
    opened = live_screen(hub)
    hub.live((0, "leads.created", {"id": "1", "data": {}}))
    hub.live((1, "", None))
    assert frames(opened) == []


async def test_an_event_published_twice_reaches_a_screen_once() -> None:
    hub = hub_with()
    opened = live_screen(hub)
    for position, event_id in enumerate(("a", "b", "a")):
        hub.live((position, "leads.created", {"org_id": "org", "id": event_id, "data": {}}))
    assert [f["id"] for f in frames(opened)] == ["a", "b"]


@pytest.mark.parametrize("seed", range(40))
async def test_the_seam_between_replay_and_live_has_no_gap_and_no_duplicate(seed: int) -> None:
    rng = random.Random(seed)
    log = MemoryLog(rng)
    hub = hub_with(log)
    for n in range(rng.randrange(1, 60)):
        log.append(rng.choice(["org", "other"]), n)
    start = rng.randrange(len(log.records))
    total = len(log.records) + rng.randrange(0, 80)
    follower = asyncio.create_task(log.follow(hub, total))
    while log.head is None or log.head < start:  # the gateway has read past the screen's position
        await asyncio.sleep(0)
    opened = screen()
    opened.position = start
    hub.screens["org"] = {opened}
    hub.replaying.add(opened)
    opened.replay = asyncio.create_task(hub._replay(opened, start))
    for n in range(len(log.records), total):  # live records keep coming while the replay runs
        log.append(rng.choice(["org", "other"]), n)
        await log._pause()
    await follower
    for _ in range(10_000):  # the replay reaches the live head (or the live side finds it ahead) by itself
        if opened.live:
            break
        await asyncio.sleep(0)
    assert opened.live and not hub.replaying
    received = frames(opened)
    assert received[0]["type"] == "welcome" and received[0]["recovered"] is True
    events = received[1:]
    expected = [p for p, _, e in log.records if p > start and e and e["org_id"] == "org"]
    assert [f["position"] for f in events] == expected
    assert len({f["id"] for f in events}) == len(events)


async def test_resumes_beyond_the_replay_caps_are_closed_1013_and_one_at_the_head_takes_no_slot() -> None:
    log = MemoryLog(random.Random(0))
    for n in range(10):
        log.append("org", n)
    log.head = 9
    hub = hub_with(log)
    hub.max_replays, hub.max_replays_per_user = 3, 2
    # Queues of 2 that nobody reads: each replay stops after its welcome and one event, holding its slot.
    opened = {name: screen(org, queue_size=2, user=user) for name, org, user in [
        ("a1", "org", "a"), ("a2", "org", "a"), ("a3", "org", "a"), ("same-name", "org2", "a"), ("b", "org", "b"),
        ("c", "org", "c")]}
    for one in opened.values():
        hub.screens.setdefault(one.org, set()).add(one)
        await hub._start(one, Resume(epoch="e1", position=0))
    refused = {name for name, one in opened.items() if one.closing is not None}
    assert refused == {"a3", "b", "c"}  # 2 per (organisation, user): "a" of org2 is another; 3 on the gateway
    for name in refused:
        await opened[name].closing  # type: ignore[misc]
        assert opened[name].ws.close_codes == [TOO_MANY_REPLAYS]  # type: ignore[attr-defined]
    reasons = {name: opened[name].ws.reasons[0] for name in refused}  # type: ignore[attr-defined]
    assert b"for this user" in reasons["a3"] and b"on this gateway" in reasons["c"]
    assert hub.replaying == {opened["a1"], opened["a2"], opened["same-name"]}

    at_head = screen()
    await hub._start(at_head, Resume(epoch="e1", position=9))  # nothing to replay: served while the slots are full
    assert at_head.live and at_head.closing is None and frames(at_head)[0]["recovered"] is True

    first = opened["a1"]
    for _ in range(10_000):  # read: its replay reaches the head and frees its slot
        if first.live:
            break
        frames(first)
        await asyncio.sleep(0)
    assert first.live and first not in hub.replaying
    again = screen(user="a", queue_size=100)
    await hub._start(again, Resume(epoch="e1", position=0))
    assert again.closing is None and again in hub.replaying
    for one in [*opened.values(), again]:
        if one.replay is not None:
            one.replay.cancel()
