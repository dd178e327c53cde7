"""The campaign dispatcher: a background job of every SMS instance that turns due targets into SMS commands.

Three loops of every SMS instance (shared/loops.py: a failed round is logged, counted and tried again; the
service says it is not ready while a round runs past its deadline): dispatch every TICK, sweep every
SWEEP_EVERY, watch every WATCH_EVERY.

Guarantee: each target is published as one `sms.send_campaign_sms` command whose message id is derived from
(campaign, lead), however often it is published, so the SMS inbox and the Sender make it one SMS; a target is
moved to `sending` and committed before it is published, so a crash in between is healed by publishing again.

    every TICK, per organisation with due targets (its pace row locked, SKIP LOCKED: one instance at a time):
        tokens = refill(rate)        breaker open: take none; half-open: one trial a second;
                                     at most in_flight_limit(rate) handed over and not answered yet
        due targets of its running campaigns (FOR UPDATE SKIP LOCKED, the campaigns share-locked)
          ├─ the lead's quiet hours now ─► next_at = the next allowed moment (deferred, never dropped)
          └─ else ─► sending ─► COMMIT ─► publish (message id = send_id(campaign, lead))
    every SWEEP: targets sending for `sweep_after`: settled from what the SMS side knows (its row, its stored
        answer); never received (a crash between commit and publish) or parked ─► published again, same id
    every WATCH: open campaigns: counts changed ─► campaigns.progress (at most 2/s each); running with nothing
        waiting or sending ─► completed + campaigns.completed (through the outbox, in the same transaction)
"""

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from faststream.rabbit import RabbitBroker

from services.sms import campaign_domain as rules
from services.sms import campaign_repository as campaigns
from services.sms import clock, domain
from services.sms import dispatch_repository as q
from services.sms.domain import SendOutcome
from shared import db, logging, outbox, topology
from shared.breaker import CircuitBreaker, State
from shared.contracts.campaigns import (
    CampaignCompleted,
    CampaignCounts,
    CampaignProgress,
    CampaignStatus,
    SendCampaignSms,
    TargetState,
)
from shared.contracts.envelope import Event, EventData, Header
from shared.contracts.sms import SmsStatus

TICK = 0.1
SWEEP_EVERY = 1.0
WATCH_EVERY = 0.5  # running campaigns; a paused one only changes while its last sends land: every PAUSED_EVERY
PAUSED_EVERY = 5
SWEEP_BATCH = 500
HALF_OPEN_TRIAL_EVERY = 1.0
SYSTEM = "sms"  # `by` of what no one pressed
log = logging.get("sms.campaigns")


@dataclass(frozen=True)
class Dispatch:
    org: str
    user: str
    campaign_id: str
    lead_id: str
    command_id: str


class Dispatcher:
    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        broker: RabbitBroker,
        own_user: str,
        breaker: CircuitBreaker,
        rate: float,
        sweep_after: timedelta,
        crash_after_dispatch: bool = False,
    ):
        """`own_user`: the service's broker user, the `user_id` of the sends it publishes (shared/identity.py)."""
        self._pool, self.broker, self.breaker, self.rate = pool, broker, breaker, rate
        self.own_user = own_user
        self.sweep_after, self._crash = sweep_after, crash_after_dispatch
        self._last_trial = 0.0
        self._watches = 0

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()  # the service's, made once it started

    # Dispatch ----------------------------------------------------------------------
    async def dispatch(self) -> int:
        cap = self._breaker_cap()
        if cap == 0:
            return 0
        now = clock.now()
        async with self.pool.acquire() as conn:
            orgs = await q.orgs_with_due(conn, now)
        published = 0
        for org in orgs:
            batch = await self._take(org, cap)
            if batch and self._crash:
                os.kill(os.getpid(), signal.SIGKILL)  # test hook: die between the commit and the publish
            published += await self._publish(batch)
            if cap is not None and (cap := cap - len(batch)) <= 0:
                break  # the breaker's trial went out
        return published

    def _breaker_cap(self) -> int | None:
        """How many sends the provider breaker lets out now: any (closed), none (open), one trial a second."""
        state = self.breaker.state
        if state is State.CLOSED:
            return None
        if state is State.HALF_OPEN and time.monotonic() - self._last_trial >= HALF_OPEN_TRIAL_EVERY:
            self._last_trial = time.monotonic()
            return 1
        return 0

    async def _take(self, org: str, cap: int | None) -> list[Dispatch]:
        async with db.transaction(self.pool) as conn:
            now = clock.now()
            pace = await q.lock_pace(conn, org, now, rules.burst(self.rate))
            if pace is None:
                return []  # another instance dispatches for this organisation right now
            tokens = rules.refill(pace["tokens"], pace["at"], now, self.rate)
            take = int(tokens) if cap is None else min(int(tokens), cap)
            if take >= 1:
                take = min(take, rules.in_flight_limit(self.rate) - await q.in_flight(conn, org))
            batch: list[Dispatch] = []
            if take >= 1:
                running = {c["id"]: c for c in await q.running(conn, org)}
                later = []
                for t in await q.due(conn, list(running), now, take) if running else []:
                    c = running[t["campaign_id"]]
                    at = rules.next_allowed(now, t["time_zone"], c["send_from"], c["send_until"])
                    if at > now:
                        later.append((t["campaign_id"], t["lead_id"], at))
                    else:
                        batch.append(Dispatch(org, c["created_by"], t["campaign_id"], t["lead_id"], t["command_id"]))
                await q.defer(conn, later)
                await q.mark_sending(conn, [d.command_id for d in batch], now)
            await q.save_pace(conn, org, tokens - len(batch), now)
        return batch

    async def _publish(self, batch: list[Dispatch]) -> int:
        results = await asyncio.gather(*(self._send(d) for d in batch), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:  # they stay `sending`: the sweep publishes them again
            log.warning("campaigns.publish_failed", count=len(failed), error=repr(failed[0]))
        return len(batch) - len(failed)

    async def _send(self, d: Dispatch) -> None:
        body = SendCampaignSms(campaignId=d.campaign_id, leadId=d.lead_id).model_dump_json().encode()
        await self.broker.publish(
            body,
            exchange=topology.exchange(topology.COMMANDS),
            routing_key=SendCampaignSms.ROUTING_KEY,
            message_id=d.command_id,
            headers={Header.ORG: d.org, Header.USER: d.user},
            content_type="application/json",
            persist=True,
            user_id=self.own_user,
        )

    # Sweep ---------------------------------------------------------------------------
    async def sweep(self) -> None:
        again: list[Dispatch] = []
        async with db.transaction(self.pool) as conn:
            now = clock.now()
            rows = await q.stuck(conn, now - self.sweep_after, SWEEP_BATCH)
            for r in rows:
                known = _outcome(r)
                if known is not None:
                    await campaigns.settle(
                        conn, r["org_id"], r["campaign_id"], r["lead_id"], known[0], r["sms_id"], known[1]
                    )
                elif r["sms_id"] is None or r["parked"]:  # never received, or given up on: publish it again
                    again.append(
                        Dispatch(r["org_id"], r["created_by"], r["campaign_id"], r["lead_id"], r["command_id"])
                    )
            await q.touch(conn, [r["command_id"] for r in rows], now)  # the rest is on its way: look later
        if again:
            log.warning("campaigns.published_again", count=len(again))
            await self._publish(again)

    # Watch ---------------------------------------------------------------------------
    async def watch(self) -> None:
        self._watches += 1
        async with self.pool.acquire() as conn:
            ids = await q.open_campaigns(conn, paused_too=self._watches % PAUSED_EVERY == 0)
        for campaign_id in ids:
            async with db.transaction(self.pool) as conn:
                await self._watch_one(conn, campaign_id)

    async def _watch_one(self, conn: asyncpg.Connection, campaign_id: str) -> None:
        c = await q.lock_open(conn, campaign_id)
        if c is None:
            return
        now = clock.now()
        counts = rules.counts((await campaigns.counts(conn, [campaign_id]))[campaign_id])
        last = CampaignCounts(**c["progress_counts"]) if c["progress_counts"] else None
        data: EventData
        if c["status"] == CampaignStatus.running and rules.finished(counts):
            await campaigns.set_status(conn, campaign_id, CampaignStatus.completed, now)
            data = CampaignCompleted(
                campaignId=campaign_id, status=CampaignStatus.completed, counts=counts, at=now, by=SYSTEM
            )
            log.info("campaigns.completed", campaign_id=campaign_id, **counts.model_dump())
        elif rules.progress_due(c["progress_at"], last, now, counts):
            data = CampaignProgress(campaignId=campaign_id, status=c["status"], counts=counts, at=now, by=SYSTEM)
        else:
            return
        await q.progressed(conn, campaign_id, now, counts.model_dump())
        await outbox.add(conn, [Event(type=data.TYPE, org_id=c["org_id"], data=data.model_dump(mode="json"))])


def _outcome(row: asyncpg.Record) -> tuple[TargetState, str | None] | None:
    """A stuck target's outcome, when the SMS side has a final one: its stored answer, else its SMS row."""
    if row["reply_status"] is not None:
        known = rules.reply_outcome(row["reply_status"], row["reply"])
        if known is not None:
            return known
    if row["sms_status"] in domain.FINAL:
        return rules.sent_outcome(SendOutcome.done, SmsStatus(row["sms_status"]), "")
    return None
