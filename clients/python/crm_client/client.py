"""`Client`: the buttons, each press with one key, retried, queued offline when the gateway is away.

press ──► earlier presses still queued? ──► replay them first (order is kept); still queued ──► queue this one
      └─► send with retries ──► answer / Refused
                            └─► Unreachable ──► offline_db set? ──► committed to the queue ──► Queued
                                                              └─► no: raise
while open: a background task replays the queue (this scope's presses) whenever there is something in it.
The queue's rows belong to (deployment, org, user) (crm_client/scope.py); `flush(all_scopes=True)` also
replays another scope's rows, when its org and user are this token's.
"""

import asyncio
import inspect
import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any
from uuid import uuid4

from crm_client.breaker import SmsBreaker
from crm_client.buttons import Buttons
from crm_client.errors import Refused, ServerError, StillAccepted, Unreachable
from crm_client.http import FilePart, Http, RetryPolicy
from crm_client.live import Event, Reload, Resume, subscribe
from crm_client.offline import Outcome, Queued, Store
from crm_client.press import Press
from crm_client.press import path as _path
from crm_client.scope import Scope, scope_of

OnOutcome = Callable[[Outcome], Awaitable[None] | None]
Result = dict[str, Any] | Queued


class Client(Buttons):
    def __init__(
        self,
        url: str,
        token: str,
        offline_db: str | None = None,
        *,
        attempts: int = 6,
        total_time: float = 30.0,
        backoff: float = 0.25,
        backoff_max: float = 8.0,
        request_timeout: float = 30.0,
        follow_time: float = 120.0,
        sms_breaker_threshold: int = 3,
        sms_breaker_cooldown: float = 30.0,
        on_outcome: OnOutcome | None = None,
        replay_interval: float = 1.0,
        replay_in_background: bool = True,
        ping_interval: float = 15.0,
    ):
        self.url, self.token, self.offline_db = url.rstrip("/"), token, offline_db
        self.policy = RetryPolicy(attempts, total_time, backoff, backoff_max, request_timeout, follow_time)
        self.http = Http(self.url, token, self.policy)
        self.breaker = SmsBreaker(sms_breaker_threshold, sms_breaker_cooldown)
        self.on_outcome, self.replay_interval, self.ping_interval = on_outcome, replay_interval, ping_interval
        self.replay_in_background = replay_in_background
        self.scope: Scope = scope_of(self.url, token)
        self.store: Store | None = None
        self._flushing = asyncio.Lock()
        self._wake = asyncio.Event()
        self._replayer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "Client":
        await self.http.open()
        if self.offline_db:
            self.store = Store(self.offline_db, self.scope, self.url)
            if self.replay_in_background:
                self._replayer = asyncio.create_task(self._replay_in_background())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._replayer is not None:
            self._replayer.cancel()
            with suppress(asyncio.CancelledError):
                await self._replayer
        await self.http.close()
        if self.store is not None:
            self.store.close()

    # The buttons and reads are generated (crm_client/buttons.py, from the server's one table).
    async def _read(self, path: str) -> dict[str, Any]:
        """Reads are never queued offline (there is nothing to replay); retried like the presses."""
        return (await self.http.query(path)).body

    # Documents: a file, not a JSON body, so written by hand (the other buttons are generated).
    async def attach_document(
        self, lead_id: str, file: str | Path | bytes, filename: str | None = None, content_type: str | None = None
    ) -> dict[str, Any]:
        """Attach a file (a path, or the bytes with `filename`) to a lead: {"document": {...}}.

        One key for the call, reused on every retry (a file is reopened and sent again); a 202 is
        followed. The same bytes attached twice to one lead are one document. `content_type` None:
        the gateway tells the type from the bytes (a declared one they contradict is refused, 415).
        Never queued offline: the queue holds JSON bodies, not files; without the gateway this raises
        Unreachable."""
        if isinstance(file, bytes):
            if not filename:
                raise ValueError("give the filename of the bytes")
            part = FilePart("file", file, filename, content_type)
        else:
            part = FilePart("file", Path(file), filename or Path(file).name, content_type)
        target = _path("/api/leads/{leadId}/documents", leadId=lead_id)
        return (await self.http.command(target, None, str(uuid4()), file=part)).body

    async def download_document(self, document_id: str) -> bytes:
        """A document's bytes (GET /api/documents/{documentId}/content); retried like a read."""
        return (
            await self.http.query(_path("/api/documents/{documentId}/content", documentId=document_id), raw=True)
        ).body

    def subscribe(
        self,
        topics: list[str] | str,
        resume: Resume | dict[str, Any] | str | None = None,
    ) -> AsyncGenerator[Event | Reload]:
        """Events of `topics`, resumed across reconnections; a Reload when the server could not.
        `resume`: a Resume, {"epoch", "position"}, or "EPOCH:POSITION" (the last position applied)."""
        topics = [topics] if isinstance(topics, str) else list(topics)
        return subscribe(self.url, self.token, topics, Resume.coerce(resume), self.ping_interval, self.policy)

    # The offline queue -------------------------------------------------------------
    def pending(self, all_scopes: bool = False) -> list[Queued]:
        """What waits, in order: this scope's presses, or (`all_scopes`) every scope's, each with its `scope`."""
        return self.store.pending(all_scopes) if self.store else []

    def replays(self, queued: Queued, all_scopes: bool = False) -> bool:
        """Whether this client (its URL and token) replays the press: its own scope's always; another scope's
        with `all_scopes`, when its organisation and user are this token's (never another identity's)."""
        scope = queued.scope or self.scope
        return scope == self.scope or (all_scopes and self.scope.same_identity(scope))

    def outcomes(self) -> list[Outcome]:
        return self.store.outcomes() if self.store else []

    async def flush(self, attempts: int | None = None, all_scopes: bool = False) -> list[Outcome]:
        """Replay the queue in order, each press with its own key, path and body; stops at the first press
        that still cannot be delivered (it stays first). `all_scopes`: the presses of every scope this client
        `replays` (made with another URL or issuer by the same org and user), sent to this client's gateway;
        another identity's are left alone. Returns what was settled by this flush."""
        if self.store is None:
            return []
        settled: list[Outcome] = []
        async with self._flushing:
            for queued in self.store.pending(all_scopes):
                if not self.replays(queued, all_scopes):
                    continue
                data = self.store.raw_body(queued.seq).encode()
                try:
                    answer = await self.http.command(queued.path, data, queued.key, attempts)
                    outcome = self.store.settle(queued.seq, "done", answer.status, answer.body)
                except (Refused, ServerError) as exc:  # final: recorded against the press, never retried
                    outcome = self.store.settle(queued.seq, "failed", exc.status, exc.problem)
                except (Unreachable, StillAccepted):
                    break
                settled.append(outcome)
                await self._report(outcome)
        return settled

    async def _press(self, press: Press, through_breaker: bool = False) -> Result:
        key = str(uuid4())  # one key for this press, whatever happens to it next
        data = json.dumps(press.body, separators=(",", ":"))
        if self.store is not None and self.store.pending():
            await self.flush(attempts=1)  # earlier presses go first
            if self.store.pending():
                return self._queue(key, press, data)

        async def send() -> dict[str, Any]:
            return (await self.http.command(press.path, data.encode(), key)).body

        try:
            return await (self.breaker.call(send) if through_breaker else send())
        except Unreachable:
            if self.store is None:
                raise
            return self._queue(key, press, data)

    def _queue(self, key: str, press: Press, data: str) -> Queued:
        assert self.store is not None
        queued = self.store.add(key, press.operation, press.path, data)  # committed before we return
        self._wake.set()
        return queued

    async def _report(self, outcome: Outcome) -> None:
        if self.on_outcome is not None:
            result = self.on_outcome(outcome)
            if inspect.isawaitable(result):
                await result

    async def _replay_in_background(self) -> None:
        """Replay whenever something waits: one attempt per press each round, the rounds spaced out
        (doubling up to 30 s while the gateway stays away)."""
        assert self.store is not None
        pause = self.replay_interval
        while True:
            if self.store.pending():
                with suppress(Exception):  # a failing round is tried again; it never ends the task
                    await self.flush(attempts=1)
                pause = min(pause * 2, 30.0) if self.store.pending() else self.replay_interval
            else:
                pause = self.replay_interval
            self._wake.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
