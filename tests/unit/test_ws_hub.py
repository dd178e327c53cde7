"""The hub's fan-out, its seam between a replay and live records, and a replay that fails, on an in-memory log."""

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator

import aiormq
import asyncpg
import pytest
from structlog.testing import capture_logs

from services.gateway.archive import Span
from services.gateway.auth import Principal
from services.gateway.ws import TOO_MANY_REPLAYS, TOO_SLOW, Hub, Screen
from services.gateway.ws import replay as replay_module
from services.gateway.ws.screen import (
    BAD_MESSAGE,
    BAD_TOKEN,
    GOING_AWAY,
    HELLO_TIMEOUT,
    LOG_UNAVAILABLE,
    OTHER_PRINCIPAL,
    event_frame,
)
from shared.contracts.realtime import Resume
from shared.problems import CLOSES
from tests.support.stack import eventually


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
        self.epoch: str | None = "e1"  # what the hub reads of its reader
        self.head: int | None = None
        self.ready = asyncio.Event()
        self.first = 0  # the first position retention left
        self.replays_from: list[int] = []

    def append(self, org: str, n: int, event_id: str | None = None) -> None:
        position = len(self.records)
        self.records.append((position, "tests.tick", {"org_id": org, "id": event_id or f"{org}-{n}", "data": {"n": n}}))
        self.grew.set()

    async def _pause(self, most: int = 3) -> None:
        for _ in range(self.rng.randrange(most)):
            await asyncio.sleep(0)

    async def holds(self, start: int) -> bool:
        return start >= self.first

    async def replay(self, start: int) -> AsyncIterator[tuple[int, str, dict | None]]:
        self.replays_from.append(start)
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


class MemoryArchive:
    """The archive in memory: an archiver copies the log's records in order, with its own lag (it may be ahead of
    the live reader, as another gateway's would be), from `tail` on; `records` reads one organisation's."""

    def __init__(self, log: MemoryLog, tail: int = 0, error: BaseException | None = None, lag: int = 4) -> None:
        self.log, self.tail, self.error, self.lag = log, tail, error, lag
        self.rows: dict[str, list[tuple[int, str, str, str]]] = {}
        self.head: int | None = None
        self.read: list[int] = []  # positions a replay read

    async def archive(self, upto: int) -> None:
        position = self.tail if self.head is None else self.head + 1
        while position < upto:
            while position >= len(self.log.records):
                self.log.grew.clear()
                await self.log.grew.wait()
            await self.log._pause(self.lag)
            at, topic, event = self.log.records[position]
            if event is not None:
                frame = event_frame(at, self.log.epoch, topic, event)
                self.rows.setdefault(event["org_id"], []).append((at, topic, str(event["id"]), frame))
            self.head = position
            position += 1

    async def span(self, epoch: str | None) -> Span | None:
        return None if self.head is None or epoch != self.log.epoch else Span(self.tail, self.head)

    async def records(self, org: str, after: int, upto: int) -> AsyncIterator[tuple[int, str, str, str]]:
        for row in [r for r in self.rows.get(org, []) if after < r[0] <= upto]:
            await self.log._pause()
            if self.error is not None:
                raise self.error
            self.read.append(row[0])
            yield row


def hub_with(
    log: MemoryLog | None = None,
    queue_size: int = 100_000,
    max_replays: int = 64,
    max_replays_per_user: int = 4,
    archive: MemoryArchive | None = None,
) -> Hub:
    hub = Hub(
        "s" * 40,
        queue_size=queue_size,
        hello_timeout=1,
        allowed_origins=set(),
        max_replays=max_replays,
        max_replays_per_user=max_replays_per_user,
        archive=archive,
    )
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


@pytest.mark.parametrize("archived", [False, True], ids=["log", "archive"])
@pytest.mark.parametrize("seed", range(40))
async def test_the_seam_between_replay_and_live_has_no_gap_and_no_duplicate(
    seed: int, archived: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    # How far behind the live head a replay follows the archive before it reads the log instead.
    monkeypatch.setattr(replay_module, "ARCHIVE_CLOSE_ENOUGH", rng.choice([0, 3, 1000]))
    log = MemoryLog(rng)
    for n in range(rng.randrange(1, 60)):
        log.append(rng.choice(["org", "other"]), n)
    start = rng.randrange(len(log.records))
    total = len(log.records) + rng.randrange(0, 80)
    # The archive may begin after the screen's position (it started late): then the log serves the resume.
    # It may be ahead of the live reader (another gateway's) or behind it (then the log serves the rest).
    tail, lag = rng.choice([0, 0, 0, start + 2]), rng.choice([1, 4, 20])
    archive = MemoryArchive(log, tail, lag=lag) if archived else None
    hub = hub_with(log, archive=archive)
    follower = asyncio.create_task(log.follow(hub, total))
    archiver = asyncio.create_task(archive.archive(total)) if archive else None
    while log.head is None or log.head < start:  # the gateway has read past the screen's position
        await asyncio.sleep(0)
    if archive is not None and tail == 0 and start + 1 < len(log.records):  # the archive covers the resume
        while archive.head is None or archive.head <= start:
            await asyncio.sleep(0)
    opened = screen()
    opened.position = start
    hub.screens["org"] = {opened}
    hub.replays.running.add(opened)
    opened.replay = asyncio.create_task(hub.replays.replay(opened, start, log))
    for n in range(len(log.records), total):  # live records keep coming while the replay runs
        log.append(rng.choice(["org", "other"]), n)
        await log._pause()
    await follower
    # The replay reaches the live head (or the live side finds it ahead) by itself; one that follows the archive
    # waits up to ARCHIVE_FOLLOW_WAIT (real time) for it to move: so a deadline, not a number of turns.
    deadline = time.monotonic() + 2 * replay_module.ARCHIVE_FOLLOW_WAIT + 5
    while not opened.live and time.monotonic() < deadline:
        await asyncio.sleep(0)
    if archiver:
        archiver.cancel()
    assert opened.live and not hub.replays.running
    received = frames(opened)
    assert received[0]["type"] == "welcome" and received[0]["recovered"] is True
    events = received[1:]
    expected = [p for p, _, e in log.records if p > start and e and e["org_id"] == "org"]
    assert [f["position"] for f in events] == expected
    assert len({f["id"] for f in events}) == len(events)
    if archive is not None and archive.read:  # served from the archive: the log only from its head on
        assert all(archive.log.records[p][2]["org_id"] == "org" for p in archive.read)  # type: ignore[index]
        assert min(log.replays_from, default=total) > start


async def test_a_resume_covered_by_the_archive_reads_no_other_organisations_record() -> None:
    log = MemoryLog(random.Random(1))
    for n in range(1000):
        log.append("other" if n % 100 else "org", n)
    archive = MemoryArchive(log)
    await archive.archive(1000)
    log.head = 999
    hub = hub_with(log, archive=archive)
    opened = screen()
    hub.screens["org"] = {opened}
    await hub.replays.start(opened, Resume(epoch="e1", position=0), log)
    await eventually(lambda: opened.live, 5, 0.01, "the replay to end")
    assert [f["position"] for f in frames(opened)[1:]] == list(range(100, 1000, 100))
    assert archive.read == list(range(100, 1000, 100)) and log.replays_from == []  # the log was not read


async def test_a_replay_follows_an_archive_that_is_catching_up_and_reads_the_log_only_near_the_head(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(replay_module, "ARCHIVE_CLOSE_ENOUGH", 10)
    log = MemoryLog(random.Random(4))
    for n in range(3000):
        log.append("other" if n % 10 else "org", n)
    archive = MemoryArchive(log, lag=1)
    await archive.archive(100)  # a gateway that was down: the live head is far ahead of the archive
    log.head = 2999
    hub = hub_with(log, archive=archive)
    opened = screen()
    hub.screens["org"] = {opened}

    async def catch_up() -> None:  # a batch every 20 ms
        for upto in [*range(600, 3000, 500), 3000]:
            await asyncio.sleep(0.02)
            await archive.archive(upto)

    catching_up = asyncio.create_task(catch_up())
    await hub.replays.start(opened, Resume(epoch="e1", position=0), log)
    await eventually(lambda: opened.live, 10, 0.01, "the replay to end")
    await catching_up
    assert [f["position"] for f in frames(opened)[1:]] == list(range(10, 3000, 10))
    assert all(start >= 2989 for start in log.replays_from), log.replays_from  # the log only for the last few


async def test_a_resume_the_archive_covers_but_the_log_no_longer_holds_is_not_recovered() -> None:
    log = MemoryLog(random.Random(2))
    for n in range(100):
        log.append("org", n)
    archive = MemoryArchive(log)
    await archive.archive(100)
    log.head, log.first = 99, 50  # retention dropped 0..49; the archive has not pruned them yet
    hub = hub_with(log, archive=archive)
    opened = screen()
    hub.screens["org"] = {opened}
    await hub.replays.start(opened, Resume(epoch="e1", position=10), log)
    await eventually(lambda: opened.live, 5, 0.01, "the welcome")
    (welcome,) = frames(opened)
    assert welcome["recovered"] is False and welcome["position"] == 99 and archive.read == []


class FarArchive:
    """An archive whose head is far past the live reader's (another gateway's archiver read that far)."""

    def __init__(self, head: int) -> None:
        self.head = head

    async def span(self, epoch: str | None) -> Span:
        return Span(0, self.head)


async def test_a_position_past_our_head_is_closed_to_resume_later_unless_no_record_has_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Within an epoch positions only grow: a position past our head is one our reader has not reached (on a
    cluster: a reader behind a node cut off from the stream's leader). Welcomed `recovered: false` at our head, the
    screen would be sent again what it had; closed 1011, it resumes in a moment. A made-up one is not recovered."""
    monkeypatch.setattr(replay_module, "LAGGING_HEAD_WAIT", 0.05)
    log = MemoryLog(random.Random(0))
    for n in range(10):
        log.append("org", n)
    log.head = 9
    hub = hub_with(log)
    behind = screen()
    await hub.replays.start(behind, Resume(epoch="e1", position=30), log)
    await behind.closing  # type: ignore[misc]
    assert behind.ws.close_codes == [LOG_UNAVAILABLE] and frames(behind) == []  # type: ignore[attr-defined]
    assert b"not read the event log up to your position" in behind.ws.reasons[0]  # type: ignore[attr-defined]
    assert behind not in hub.replays.running and not behind.live
    made_up = screen()
    await hub.replays.start(made_up, Resume(epoch="e1", position=9 + replay_module.AHEAD_SLACK + 1), log)
    (welcome,) = frames(made_up)
    assert made_up.closing is None and welcome["recovered"] is False and welcome["position"] == 9
    archived = hub_with(log, archive=FarArchive(9 + 2 * replay_module.AHEAD_SLACK))  # type: ignore[arg-type]
    far = screen()
    await archived.replays.start(far, Resume(epoch="e1", position=9 + replay_module.AHEAD_SLACK + 1), log)
    await far.closing  # type: ignore[misc]
    assert far.ws.close_codes == [LOG_UNAVAILABLE]  # type: ignore[attr-defined]


async def test_resumes_beyond_the_replay_caps_are_closed_1013_and_one_at_the_head_takes_no_slot() -> None:
    log = MemoryLog(random.Random(0))
    for n in range(10):
        log.append("org", n)
    log.head = 9
    hub = hub_with(log, max_replays=3, max_replays_per_user=2)
    # Queues of 2 that nobody reads: each replay stops after its welcome and one event, holding its slot.
    opened = {
        name: screen(org, queue_size=2, user=user)
        for name, org, user in [
            ("a1", "org", "a"),
            ("a2", "org", "a"),
            ("a3", "org", "a"),
            ("same-name", "org2", "a"),
            ("b", "org", "b"),
            ("c", "org", "c"),
        ]
    }
    for one in opened.values():
        hub.screens.setdefault(one.org, set()).add(one)
        await hub.replays.start(one, Resume(epoch="e1", position=0), log)
    refused = {name for name, one in opened.items() if one.closing is not None}
    assert refused == {"a3", "b", "c"}  # 2 per (organisation, user): "a" of org2 is another; 3 on the gateway
    for name in refused:
        await opened[name].closing  # type: ignore[misc]
        assert opened[name].ws.close_codes == [TOO_MANY_REPLAYS]  # type: ignore[attr-defined]
    reasons = {name: opened[name].ws.reasons[0] for name in refused}  # type: ignore[attr-defined]
    assert b"for this user" in reasons["a3"] and b"on this gateway" in reasons["c"]
    assert hub.replays.running == {opened["a1"], opened["a2"], opened["same-name"]}

    at_head = screen()
    # Nothing to replay: served while the slots are full.
    await hub.replays.start(at_head, Resume(epoch="e1", position=9), log)
    assert at_head.live and at_head.closing is None and frames(at_head)[0]["recovered"] is True

    first = opened["a1"]
    for _ in range(10_000):  # read: its replay reaches the head and frees its slot
        if first.live:
            break
        frames(first)
        await asyncio.sleep(0)
    assert first.live and first not in hub.replays.running
    again = screen(user="a", queue_size=100)
    await hub.replays.start(again, Resume(epoch="e1", position=0), log)
    assert again.closing is None and again in hub.replays.running
    for one in [*opened.values(), again]:
        if one.replay is not None:
            one.replay.cancel()


class FailingLog(MemoryLog):
    """A log whose replay gives one record, then fails with `error`."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(random.Random(0))
        self.error = error

    async def replay(self, start: int) -> AsyncIterator[tuple[int, str, dict | None]]:
        yield self.records[start]
        raise self.error


@pytest.mark.parametrize(
    ("error", "bug"),
    [
        (ConnectionError("the event log's channel closed"), False),
        (aiormq.exceptions.ChannelInvalidStateError("<Channel: 1> closed"), False),
        (aiormq.exceptions.ConnectionClosed(320, "CONNECTION_FORCED"), False),
        (RuntimeError("a bug"), True),
        (KeyError("x-stream-offset"), True),
    ],
)
async def test_a_replay_that_fails_closes_1011_and_a_bug_is_logged_with_its_traceback(
    error: BaseException, bug: bool
) -> None:
    log = FailingLog(error)
    for n in range(10):
        log.append("org", n)
    log.head = 9
    hub = hub_with(log)
    opened = screen()
    with capture_logs() as logged:
        await hub.replays.start(opened, Resume(epoch="e1", position=0), log)
        await eventually(lambda: opened.closing, 5, 0.01, "the replay to fail")
    await opened.closing  # type: ignore[misc]  # (set: waited for above)
    assert opened.ws.close_codes == [LOG_UNAVAILABLE] == [1011]  # type: ignore[attr-defined]  # a StuckSocket
    assert opened.ws.reasons == [b"the event log is unavailable: resume in a moment"]  # type: ignore[attr-defined]
    assert not hub.replays.running and not opened.live  # its slot is free; its client resumes
    (said,) = [line for line in logged if line["event"] in ("ws.replay_failed", "ws.replay_crashed")]
    if bug:
        assert (said["event"], said["log_level"], said.get("exc_info")) == ("ws.replay_crashed", "error", True)
    else:
        assert (said["event"], said["log_level"], "exc_info" in said) == ("ws.replay_failed", "warning", False)


async def test_an_archive_that_fails_mid_replay_closes_1011() -> None:
    log = MemoryLog(random.Random(3))
    for n in range(10):
        log.append("org", n)
    archive = MemoryArchive(log, error=asyncpg.ConnectionDoesNotExistError("connection was closed"))
    await archive.archive(10)
    log.head = 9
    hub = hub_with(log, archive=archive)
    opened = screen()
    with capture_logs() as logged:
        await hub.replays.start(opened, Resume(epoch="e1", position=0), log)
        await eventually(lambda: opened.closing, 5, 0.01, "the replay to fail")
    await opened.closing  # type: ignore[misc]
    assert opened.ws.close_codes == [LOG_UNAVAILABLE]  # type: ignore[attr-defined]
    assert [line["event"] for line in logged] == ["ws.replay_failed"] and not hub.replays.running


async def test_a_live_event_whose_organisation_is_no_string_goes_nowhere() -> None:
    hub = hub_with()
    opened = live_screen(hub)
    for position, org in enumerate([["org"], {"org": 1}, 5, None]):
        hub.live((position, "leads.created", {"org_id": org, "id": str(position), "data": {}}))
    assert frames(opened) == []


def test_the_close_codes_are_the_shared_tables() -> None:
    assert {name: close.code for name, close in CLOSES.items()} == {
        "bad_message": 4400,
        "bad_token": 4401,
        "other_principal": 4403,
        "hello_timeout": 4408,
        "try_again_later": 1013,
        "log_unavailable": 1011,
        "going_away": 1001,
    }
    assert (BAD_MESSAGE, BAD_TOKEN, OTHER_PRINCIPAL, HELLO_TIMEOUT) == (4400, 4401, 4403, 4408)
    assert (TOO_SLOW, TOO_MANY_REPLAYS, LOG_UNAVAILABLE, GOING_AWAY) == (1013, 1013, 1011, 1001)
