"""The welcome, and a resume without loss: the replay of a screen, its seam with the live side, its slots.

Guarantee: a screen resumed from (epoch, P) gets every event of its organisation after P that its patterns
match, in position order, each once, then the live events, with no gap and no duplicate at the seam. A
screen whose P the log no longer holds (retention), of another epoch, or without a resume, is welcomed
`recovered: false` at the live head, and its client reloads by REST.

    resume P ──► a slot? ──no──► close 1013 "too many replays ...: resume after a backoff"
                   │ yes
                   ▼
    Log.replay(P) ──► the screen's queue ──► ... its position reaches the live head ──► live (slot freed)
                                       ▲
    a live record at or behind the screen's position, its replay not holding one ──► live (the same)

The seam: a screen has a `position`, the last log position it has been brought past (sent, or not its
business). A resuming screen reads the log from P on its own; the live side ignores it until it is live,
and afterwards sends it only records past its position. A record is put on the screen's queue before its
position moves (`busy` meanwhile), so the live side never overtakes the replay.

Where a replay reads from: the archive (services/gateway/archive.py) holds every organisation's records by
(organisation, position) up to its head; a resume it covers reads its own organisation's records from there, then
the log from the archive's head on (what the archiver has not written yet: normally nothing). One record of the
log is read first (`Log.holds`): the log's retention stays the only one. A resume the archive does not cover
(it started later, the database is away) reads the log from P, every organisation's records, as it always did.

Slots: a replay holds a channel or a database query at a time, so a gateway runs at most `most` at once and at
most `most_per_user` per (organisation, user); a resume that would replay (or wait for a lagging head) takes a
slot until it is live; beyond either cap it is closed 1013. A resume at the head takes none.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any, Protocol

from services.gateway.stream import CONNECTION_ERRORS, Record, held
from services.gateway.ws.screen import LOG_UNAVAILABLE, TOO_MANY_REPLAYS, Screen, event_frame, welcome_frame
from shared import db, logging
from shared.contracts import realtime

log = logging.get("gateway.ws")
REMEMBER_IDS = 50_000  # event ids the hub remembers to send each once (the relay publishes at least once)
REPLAY_REMEMBER_IDS = 10_000
LAGGING_HEAD_WAIT = 2.0  # a position past our head may be one another gateway has read already
ARCHIVE_CLOSE_ENOUGH = 1000  # positions behind the live head, where a replay stops following the archive for the log
ARCHIVE_FOLLOW_WAIT = 1.0  # how long a replay waits for an archive that is behind to move, before it reads the log
UNAVAILABLE = b"the event log is unavailable: resume in a moment"
BEHIND = b"this gateway has not read the event log up to your position yet: resume in a moment"
AHEAD_SLACK = 100_000  # positions past our head taken for a lag of ours (beyond: only if the archive has them)


class Log(Protocol):
    """What a replay reads of the event log (services/gateway/stream.Reader)."""

    epoch: str | None
    head: int | None  # the last position read live (None until the reader is ready)

    def replay(self, start: int) -> AsyncIterator[Record]: ...

    async def holds(self, start: int) -> bool: ...


class Span(Protocol):
    @property
    def head(self) -> int: ...

    def covers(self, start: int) -> bool: ...


class Archive(Protocol):
    """What a replay reads of the archive (services/gateway/archive.Archive)."""

    async def span(self, epoch: str | None) -> Span | None: ...

    def records(self, org: str, after: int, upto: int) -> AsyncIterator[tuple[int, str, str, str]]: ...


def remember(memory: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
    """Keep the last `limit` keys (ids of events seen) and forget the oldest."""
    memory[key] = value
    if len(memory) > limit:
        memory.popitem(last=False)


class Seen:
    """Event ids the live side has read, each with the position it first read it at (the last REMEMBER_IDS)."""

    def __init__(self) -> None:
        self._first: OrderedDict[str, int] = OrderedDict()

    def again(self, event: dict[str, Any], position: int) -> bool:
        """Whether this live record is a second copy (the same id at another position): skipped."""
        key = str(event.get("id"))
        first = self._first.get(key)
        if first is None:
            remember(self._first, key, position, REMEMBER_IDS)
            return False
        return first != position

    def earlier(self, key: str, position: int) -> bool:
        """Whether the live side read the event `key` at an earlier position than a replay now does."""
        first = self._first.get(key)
        return first is not None and first < position


class Replays:
    def __init__(self, seen: Seen, most: int, most_per_user: int, archive: Archive | None = None):
        self.seen, self.most, self.most_per_user, self.archive = seen, most, most_per_user, archive
        self.running: set[Screen] = set()  # each holds a slot until it is live

    async def start(self, screen: Screen, resume: realtime.Resume | None, reader: Log) -> None:
        """Welcome the screen: from the live head, or resumed from its position.
        Every frame, the welcome first, goes through the screen's queue: one order."""
        if resume is None or resume.epoch != reader.epoch:
            return self._from_head(screen, reader)
        start = resume.position
        if start != reader.head and not self._take_slot(screen):  # to replay, or to wait for the head
            return
        deadline = time.monotonic() + LAGGING_HEAD_WAIT
        while reader.head is not None and start > reader.head and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # another gateway may have read further than we have
        head = reader.head
        if head is not None and start > head and await self._ahead_of_us(start, head, reader.epoch):
            return self._behind(screen, start, head)
        if head is None or start > head:
            return self._from_head(screen, reader)
        screen.position = start
        if start == head:
            screen.offer(welcome_frame(screen, reader.epoch, recovered=True))
            return self.go_live(screen)
        screen.replay = asyncio.create_task(self.replay(screen, start, reader))

    async def _ahead_of_us(self, start: int, head: int, epoch: str | None) -> bool:
        """Whether a position past our head is one the log holds: within AHEAD_SLACK of it, or archived (another
        gateway read it). Positions only grow within an epoch: this gateway's reader is behind (on a cluster, one
        reading through a node cut off from the stream's leader until it paused). A position beyond both is no
        record's (a made-up one): not recovered."""
        if start - head <= AHEAD_SLACK:
            return True
        span = await self.archive.span(epoch) if self.archive is not None else None
        return span is not None and span.head >= start

    def _behind(self, screen: Screen, start: int, head: int) -> None:
        """Closed 1011: the client resumes in a moment (here, caught up by then, or on another gateway). Welcomed
        `recovered: false` at our head instead, it would be sent again what it had already (make chaos CLUSTER=3)."""
        log.info("ws.resume_ahead_of_reader", org_id=screen.org, position=start, head=head)
        self.running.discard(screen)
        screen.close(LOG_UNAVAILABLE, BEHIND)

    def overtaken(self, position: int) -> None:
        """The live reader got `position`: a replay already past it (and not holding a record) hands over."""
        for screen in list(self.running):
            if not screen.busy and screen.position >= position:
                self.go_live(screen)

    def go_live(self, screen: Screen) -> None:
        screen.live = True
        self.running.discard(screen)
        if screen.replay is not None and screen.replay is not asyncio.current_task():
            screen.replay.cancel()

    async def replay(self, screen: Screen, start: int, reader: Log) -> None:
        """Send what came after `start`, then hand the screen to the live side: from the archive where it
        covers `start`, then from the log. The first record the log gives must be `start` itself (stream.held):
        otherwise the log no longer holds it."""
        recent: OrderedDict[str, None] = OrderedDict()
        welcomed = False
        try:
            span = await self.archive.span(reader.epoch) if self.archive is not None else None
            if span is not None and span.covers(start):
                if not await reader.holds(start):  # what came after `start` is gone (retention)
                    return self._from_head(screen, reader)
                await screen.queue.put(welcome_frame(screen, reader.epoch, recovered=True))
                welcomed = True
                start = await self._archived(screen, start, span.head, reader, recent)
                if reader.head is not None and screen.position >= reader.head:
                    return self.go_live(screen)
            first = True
            async for position, topic, event in reader.replay(start):
                if first and position < start:
                    continue  # (a read may begin with the chunk's records before `start`)
                screen.busy = True
                if first:
                    first = False
                    if not held(start, position) and welcomed:  # gone while the archive was read: resume again
                        return screen.close(LOG_UNAVAILABLE, UNAVAILABLE)
                    if not held(start, position):  # what came after `start` is gone (retention)
                        return self._from_head(screen, reader)
                    if not welcomed:
                        await screen.queue.put(welcome_frame(screen, reader.epoch, recovered=True))
                if position > screen.position:
                    if (
                        event is not None
                        and screen.wants(topic, event)
                        and not self._sent(str(event.get("id")), position, recent)
                    ):
                        await screen.queue.put(event_frame(position, reader.epoch, topic, event))
                    screen.position = position
                screen.busy = False
                if reader.head is not None and screen.position >= reader.head:
                    return self.go_live(screen)
        except (*CONNECTION_ERRORS, *db.ERRORS) as exc:
            log.warning("ws.replay_failed", error=repr(exc))
            screen.close(LOG_UNAVAILABLE, UNAVAILABLE)
        except Exception:  # a bug: said with its traceback; the client resumes (a screen left waiting would not)
            log.exception("ws.replay_crashed", org_id=screen.org, start=start, position=screen.position)
            screen.close(LOG_UNAVAILABLE, UNAVAILABLE)
        finally:
            screen.busy = False
            self.running.discard(screen)

    async def _archived(
        self, screen: Screen, start: int, head: int, reader: Log, recent: OrderedDict[str, None]
    ) -> int:
        """The organisation's records in (start, head] from the archive; the screen is then past `head`. While
        the archive is far behind the live head but moving (its archiver catching up, e.g. after a restart),
        it is followed: the log is read only from where it stopped moving (returned). Each record is its
        organisation's (the query says so), so only its topic is matched here."""
        assert self.archive is not None  # (called only when the archive covered the resume)
        while True:
            async for position, topic, key, frame in self.archive.records(screen.org, start, head):
                screen.busy = True
                if position > screen.position:  # (the live side may have taken the screen over: see `overtaken`)
                    if screen.topics.match(topic) and not self._sent(key, position, recent):
                        await screen.queue.put(frame)
                    screen.position = position
                screen.busy = False
            screen.position = max(screen.position, head)
            if reader.head is None or reader.head - head <= ARCHIVE_CLOSE_ENOUGH:
                return head
            moved = await self._archive_moved(reader.epoch, head)
            if moved is None:
                return head
            start, head = head, moved

    async def _archive_moved(self, epoch: str | None, head: int) -> int | None:
        """The archive's new head, once it moved past `head` (within ARCHIVE_FOLLOW_WAIT); else None."""
        assert self.archive is not None
        deadline = time.monotonic() + ARCHIVE_FOLLOW_WAIT
        while time.monotonic() < deadline:
            span = await self.archive.span(epoch)
            if span is None:
                return None
            if span.head > head:
                return span.head
            await asyncio.sleep(0.05)  # (the archiver writes a batch at least every second while behind)
        return None

    def _sent(self, key: str, position: int, recent: OrderedDict[str, None]) -> bool:
        """Whether this copy of the event `key` is one the screen already has (or will have from the live side)."""
        if self.seen.earlier(key, position) or key in recent:
            return True
        remember(recent, key, None, REPLAY_REMEMBER_IDS)
        return False

    def _from_head(self, screen: Screen, reader: Log) -> None:
        """Not recovered: the client reloads by REST and goes on live from the head."""
        screen.position = reader.head if reader.head is not None else -1
        screen.offer(welcome_frame(screen, reader.epoch, recovered=False))
        self.go_live(screen)

    def _take_slot(self, screen: Screen) -> bool:
        """A replay holds a channel or a query at a time: so many at once per gateway and per user. Beyond
        either cap the screen is closed 1013, and its client resumes after a backoff."""
        if sum(other.user == screen.user for other in self.running) >= self.most_per_user:
            refusal = "for this user"
        elif len(self.running) >= self.most:
            refusal = "on this gateway"
        else:
            self.running.add(screen)  # (its position is -1 until it replays: the live side leaves it be)
            return True
        log.info("ws.replay_refused", org_id=screen.org, user_id=screen.principal.user, cap=refusal)
        screen.close(TOO_MANY_REPLAYS, realtime.close_reason(f"too many replays {refusal}: resume after a backoff"))
        return False
