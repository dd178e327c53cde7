"""The driver: journeys of presses at a steady rate, each press recorded with its key and its expected effect.

    workers (many journeys at once) ──► Rate (one press every 1/rate s across all of them) ──► press
        press ──► gateway (crm_client, failover between the two)  [+ a copy straight to the broker, sometimes]
              └─► broker (published twice: a duplicated delivery on purpose)

A journey is what an agent does with one lead (create it, move it, book and confirm, text it, make a
deal...): a step needs the answer of the one before (an id), so a step whose press got no final
answer ends the journey. After the load, `resolve` repeats every press still without an answer, with
its own key, until it has one: what a real client's offline queue does.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

from chaos.clients import Broker, Gateways, Unresolved
from chaos.presses import Factory, Press
from tests.support.clock import noon_zone


class Stop(Exception):
    """The journey cannot go on (its press was not accepted, or the load is over)."""


class Rate:
    """One press every 1/rate seconds, whoever asks; no burst to catch up after a stall longer than a second."""

    def __init__(self, per_second: float):
        self.interval, self.next = 1.0 / per_second, time.monotonic()

    async def take(self) -> None:
        now = time.monotonic()
        at = max(self.next, now - 1.0)
        self.next = at + self.interval
        if at > now:
            await asyncio.sleep(at - now)


@dataclass
class Lead:
    id: str
    name: str
    phone: str


class Driver:
    def __init__(
        self,
        factory: Factory,
        gateways: Gateways,
        broker: Broker,
        rng: Random,
        *,
        rate: float,
        dup_share: float,
        press_deadline: float,
    ):
        self.f, self.gateways, self.broker, self.rng = factory, gateways, broker, rng
        self.rate, self.dup_share, self.press_deadline = Rate(rate), dup_share, press_deadline
        self.presses: list[Press] = []
        self.stop_at = 0.0
        self.copies: set[asyncio.Task[None]] = set()
        self.errors: Counter[str] = Counter()

    # Sending ---------------------------------------------------------------------------------------
    async def press(self, press: Press) -> Any:
        await self.rate.take()
        if time.monotonic() > self.stop_at:
            raise Stop("the load is over")
        self.presses.append(press)
        press.started = time.monotonic()
        await self._send(press, press.started + self.press_deadline)
        if not press.accepted:
            raise Stop(f"press {press.seq} {press.kind}: {press.outcome} {press.status}")
        return press.body

    async def _send(self, press: Press, deadline: float) -> None:
        try:
            if press.via == "broker":
                self._copy(press)
                press.status, press.body = await self.broker.send(press, deadline)
            else:
                if press.file is None and self.rng.random() < self.dup_share:  # an upload's command is the gateway's
                    self._copy(press)
                press.status, press.body = await self.gateways.send(press, deadline)
            press.outcome = "accepted" if press.status < 300 else "refused" if press.status < 500 else "failed"
        except Unresolved:
            press.outcome = "unresolved"
        except Exception as exc:  # noqa: BLE001 - a client bug must not end the run: counted, sent again later
            self.errors[f"press: {type(exc).__name__}: {exc}"[:200]] += 1
            press.outcome = "unresolved"
        press.ended = time.monotonic()

    def _copy(self, press: Press) -> None:
        task = asyncio.create_task(self.broker.copy(press, time.monotonic() + 30))
        self.copies.add(task)
        task.add_done_callback(self.copies.discard)

    async def resolve(self, deadline: float) -> None:
        """Every press without a final answer is sent again with its key (and its way in) until it has one."""
        pending = [p for p in self.presses if p.outcome == "unresolved"]
        await asyncio.gather(*(self._send(p, deadline) for p in pending))
        if self.copies:
            await asyncio.wait(self.copies, timeout=max(1.0, deadline - time.monotonic()))

    # The load ----------------------------------------------------------------------------------------
    async def run(self, seconds: float, workers: int) -> None:
        self.stop_at = time.monotonic() + seconds
        journeys: list[tuple[float, Callable[[Driver], Awaitable[None]]]] = [
            (2, status_moves),
            (1, bulk_moves),
            (1.5, confirm_quietly),
            (1.5, confirm_with_sms),
            (1.5, reschedule_and_cancel),
            (2, texts),
            (2, deal),
            (1, deal_declined),
            (1, deal_undone),
            (1, campaign),
            (0.5, quiet_campaign),
            (1, documents),
        ]
        weights, kinds = [w for w, _ in journeys], [j for _, j in journeys]

        async def worker() -> None:
            while time.monotonic() < self.stop_at:
                try:
                    await self.rng.choices(kinds, weights)[0](self)
                except Stop:
                    pass
                except Exception as exc:  # noqa: BLE001 - an answer of an unexpected shape: counted, reported
                    self.errors[f"journey: {type(exc).__name__}: {exc}"[:200]] += 1

        await asyncio.gather(*(worker() for _ in range(workers)))

    # Steps shared by journeys ------------------------------------------------------------------------------
    async def lead(self, time_zone: str | None = None) -> Lead:
        name, phone = f"{self.f.unique('L')} Chaos", self.f.phone()
        body = await self.press(self.f.create_lead(name, phone, time_zone))
        return Lead(body["lead"]["id"], name, body["lead"]["phone"])

    async def appointment(self, lead: Lead) -> tuple[str, datetime]:
        starts = soon(self.rng, 30)
        body = await self.press(self.f.create_appointment(lead.id, starts, self.f.unique("appointment")))
        return body["appointment"]["id"], starts


def soon(rng: Random, days: int) -> datetime:
    at = datetime.now(UTC) + timedelta(days=days, minutes=rng.randrange(0, 60 * 24 * 20))
    return at.replace(second=0, microsecond=0)


# Journeys -----------------------------------------------------------------------------------------------
async def status_moves(d: Driver) -> None:
    lead = await d.lead()
    await d.press(d.f.update_status(lead.id, "contacted"))
    await d.press(d.f.update_status(lead.id, "qualified", "contacted"))


async def bulk_moves(d: Driver) -> None:
    ids = [(await d.lead()).id for _ in range(3)]
    await d.press(d.f.bulk_status(ids, "contacted"))
    await d.press(d.f.bulk_status(ids, "lost"))


async def confirm_quietly(d: Driver) -> None:
    lead = await d.lead()
    appointment, _ = await d.appointment(lead)
    await d.press(d.f.confirm(appointment, lead.id, lead.phone, d.f.unique("agent"), send_sms=False))


async def confirm_with_sms(d: Driver) -> None:
    lead = await d.lead()
    appointment, _ = await d.appointment(lead)
    await d.press(d.f.confirm(appointment, lead.id, lead.phone, d.f.unique("agent"), send_sms=True))


async def reschedule_and_cancel(d: Driver) -> None:
    lead = await d.lead()
    appointment, _ = await d.appointment(lead)
    await d.press(d.f.reschedule(appointment, soon(d.rng, 60)))
    await d.press(d.f.cancel(appointment, d.f.unique("reason")))


async def texts(d: Driver) -> None:
    lead = await d.lead()
    for _ in range(2):
        await d.press(d.f.send_sms(lead.id, lead.phone, f"Hello from the chaos run ({d.f.unique('sms')})"))


async def proposed(d: Driver) -> tuple[Lead, str, int]:
    """A new lead and a proposal sent to it, valid for 30 days: the lead, the proposal's id, its amount."""
    lead = await d.lead()
    amount = d.rng.randrange(10_000, 1_000_000)
    valid = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    proposal = (await d.press(d.f.send_proposal(lead.id, d.f.unique("proposal"), amount, valid)))["proposal"]["id"]
    return lead, proposal, amount


async def deal(d: Driver) -> None:
    lead, proposal, amount = await proposed(d)
    await d.press(d.f.accept(proposal, lead.id))
    await d.press(d.f.record_payment(proposal, amount // 2, d.f.unique("ref")))
    contract = (await d.press(d.f.create_contract(proposal)))["contract"]["id"]
    await d.press(d.f.sign_contract(contract, d.f.unique("Signer")))


async def deal_declined(d: Driver) -> None:
    lead, proposal, _ = await proposed(d)
    await d.press(d.f.decline(proposal, lead.id, d.f.unique("too dear")))


async def deal_undone(d: Driver) -> None:
    """Paid, part refunded; a contract sent, then voided."""
    lead, proposal, amount = await proposed(d)
    await d.press(d.f.accept(proposal, lead.id))
    paid, back = amount // 2, amount // 8
    payment = (await d.press(d.f.record_payment(proposal, paid, d.f.unique("ref"), paid=False)))["payment"]["id"]
    await d.press(d.f.refund(payment, proposal, back, paid - back, d.f.unique("refund")))
    contract = (await d.press(d.f.create_contract(proposal)))["contract"]["id"]
    await d.press(d.f.send_contract(contract))
    await d.press(d.f.void_contract(contract, d.f.unique("void")))


async def campaign(d: Driver) -> None:
    """Three leads texted by a campaign: the dispatcher and the SMS service under the same faults."""
    people = [await d.lead() for _ in range(3)]
    body = f"Chaos campaign ({d.f.unique('campaign sms')})"
    template = (await d.press(d.f.create_template(d.f.unique("template"), body)))["template"]["id"]
    created = await d.press(d.f.create_campaign(d.f.unique("campaign"), template, [p.id for p in people]))
    await d.press(d.f.start_campaign(created["campaign"]["id"], body, [p.phone for p in people]))


async def documents(d: Driver) -> None:
    """A file attached to a lead (the claim check), then deleted."""
    lead = await d.lead()
    name = f"{d.f.unique('document')}.txt"
    attached = await d.press(d.f.attach_document(lead.id, name, f"Notes of the chaos run: {name}\n".encode()))
    await d.press(d.f.delete_document(attached["document"]["id"]))


async def quiet_campaign(d: Driver) -> None:
    """A campaign whose window is shut: started (its leads wait), paused, resumed, cancelled; nobody texted.
    Its leads live where it is about noon: 00:00-01:00 there stays shut for the whole run."""
    people = [await d.lead(noon_zone()) for _ in range(2)]
    body = f"Chaos campaign, never sent ({d.f.unique('quiet sms')})"
    template = (await d.press(d.f.create_template(d.f.unique("template"), body)))["template"]["id"]
    created = await d.press(
        d.f.create_campaign(d.f.unique("campaign"), template, [p.id for p in people], window=("00:00", "01:00"))
    )
    campaign_id = created["campaign"]["id"]
    await d.press(d.f.start_campaign(campaign_id, body, [p.phone for p in people], quiet=True))
    for how in ("pause", "resume", "cancel"):
        await d.press(d.f.move_campaign(how, campaign_id, len(people)))
