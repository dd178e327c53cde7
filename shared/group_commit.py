"""Group commit: the transactions of commands that arrive together run as one.

Guarantee: nothing changes about what a command does or answers. Commands delivered while a
batch is being written wait for it and go together in the next one: one BEGIN, one COMMIT and one
fsync for all of them, each command's writes (effect, outbox, inbox row) in order in the same
transaction. A batch in which anything fails (a refusal, a known message id, a lock timeout...) is
rolled back whole and its commands are run again one by one, each with its own transaction, so
every command gets exactly the answer it would have had alone. Each caller acks and replies only
after the commit that holds its command.

    task 1 ─ submit ─┐                    ┌─ reply 1, ack 1
    task 2 ─ submit ─┼─► BEGIN; job 1; job 2; job 3; COMMIT ─┼─ reply 2, ack 2
    task 3 ─ submit ─┘   (anything fails: ROLLBACK, then each alone)   └─ reply 3, ack 3
"""

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable

import asyncpg

from shared import db, logging
from shared.contracts.envelope import Reply

Job = Callable[[asyncpg.Connection], Awaitable[Reply]]  # a command's writes in a given transaction
log = logging.get("group_commit")


class GroupCommit:
    def __init__(self, pool: asyncpg.Pool, max_batch: int, crash_after_commit: bool = False):
        self.pool, self.max_batch = pool, max_batch
        self._crash_after_commit = crash_after_commit  # test hook: die once a batch committed, before any ack
        self._waiting: list[tuple[Job, asyncio.Future[Reply]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def run(self, job: Job) -> Reply:
        """The command's reply once its batch committed; its exception when it fails on its own."""
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting.append((job, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
            live = [(job, future) for job, future in batch if not future.done()]  # a cancelled caller is gone
            if len(live) == 1:
                await self._alone(*live[0])
            elif live:
                await self._together(live)

    async def _together(self, batch: list[tuple[Job, asyncio.Future[Reply]]]) -> None:
        try:
            async with db.transaction(self.pool) as conn:
                replies = [await job(conn) for job, _ in batch]
        except Exception as exc:  # noqa: BLE001  (any failure: each command on its own decides)
            log.info("group_commit.split", size=len(batch), error=repr(exc)[:200])
            for job, future in batch:
                await self._alone(job, future)
            return
        if self._crash_after_commit:
            os.kill(os.getpid(), signal.SIGKILL)
        for (_, future), reply in zip(batch, replies, strict=True):
            if not future.done():
                future.set_result(reply)

    async def _alone(self, job: Job, future: asyncio.Future[Reply]) -> None:
        try:
            async with db.transaction(self.pool) as conn:
                reply = await job(conn)
        except Exception as exc:  # noqa: BLE001  (handed to the command's own task, which decides)
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(reply)
