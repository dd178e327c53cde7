"""Typed events (shared/consumer.py `Step`, shared/service.py `Service.event`): an event's data is parsed once as
its model and handed over typed; data that is not its model is a refusal naming its fields; `when` false is
nothing to do; a service's work queue is bound to what it registers, and to nothing else."""

import importlib
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from shared.consumer import Step
from shared.contracts.bookings import AppointmentConfirmed
from shared.contracts.envelope import Event
from shared.contracts.leads import CreateLead, LeadCreated, LeadStatus
from shared.contracts.proposals import ProposalAccepted, ProposalDeclined, ProposalSent
from shared.messages import IGNORED, Effect, Meta, Outcome
from shared.problems import Invalid

META = Meta("m1", "org-1", "events", "leads.created")


async def create(conn: asyncpg.Connection, cmd: CreateLead, meta: Meta) -> Outcome:
    raise AssertionError("not run here")


async def remember(conn: asyncpg.Connection, lead: LeadCreated, meta: Meta) -> Outcome:
    raise AssertionError("not run here")


class Texting(Effect[AppointmentConfirmed, str]):
    async def perform(self, pool: asyncpg.Pool, command: AppointmentConfirmed, meta: Meta) -> str:
        return command.leadId

    async def record(self, conn: asyncpg.Connection, command: AppointmentConfirmed, meta: Meta, result: str) -> Outcome:
        raise AssertionError("not run here")


def created(**data: Any) -> Event:
    lead = {
        "leadId": str(uuid4()),
        "name": "Ada",
        "phone": "+14155550100",
        "email": None,
        "status": "new",
        "createdAt": datetime.now(UTC).isoformat(),
        "by": "agent-1",
    }
    return Event(type=LeadCreated.TYPE, org_id="org-1", data={**lead, **data})


def confirmed(send_sms: bool) -> Event:
    return Event(
        type=AppointmentConfirmed.TYPE,
        org_id="org-1",
        data={
            "appointmentId": "a1",
            "leadId": "l1",
            "confirmedAt": datetime.now(UTC).isoformat(),
            "confirmedBy": "agent-1",
            "sendSms": send_sms,
            "startsAt": datetime.now(UTC).isoformat(),
        },
    )


def test_a_command_is_given_as_it_came() -> None:
    step = Step(create)
    command = CreateLead(name="Ada", phone="+14155550100")
    assert step.given(command) == (command, step)


def test_an_events_data_is_given_as_its_model() -> None:
    step = Step(remember, LeadCreated)
    event = created(extra="ignored: consumers ignore unknown fields")
    data, runs = step.given(event)
    assert isinstance(data, LeadCreated) and data.leadId == event.data["leadId"] and data.status == LeadStatus.new
    assert runs is step


def test_data_that_is_not_its_model_is_a_refusal_naming_its_fields() -> None:
    event = created(leadId=None, status="no such status")
    with pytest.raises(Invalid) as refused:
        Step(remember, LeadCreated).given(event)
    body = refused.value.body
    assert (refused.value.status, body["type"]) == (422, "/problems/validation")
    assert {e["field"] for e in body["errors"]} == {"data.leadId", "data.status"}
    assert "leads.created" in body["detail"]


async def test_when_false_is_nothing_to_do_and_answered_ignored() -> None:
    texting = Texting()
    step = Step(texting, AppointmentConfirmed, when=lambda c: c.sendSms)
    data, runs = step.given(confirmed(send_sms=True))
    assert runs is step and data.sendSms
    data, runs = step.given(confirmed(send_sms=False))
    assert not isinstance(runs.run, Effect) and not data.sendSms
    assert (await runs.run(None, data, META)).reply == IGNORED  # touches nothing: no connection needed


@pytest.mark.parametrize(
    ("service", "events"),
    [
        ("leads", (ProposalSent.TYPE, ProposalAccepted.TYPE, ProposalDeclined.TYPE)),
        ("bookings", (LeadCreated.TYPE,)),
        ("sms", (LeadCreated.TYPE, AppointmentConfirmed.TYPE)),
        ("proposals", (LeadCreated.TYPE,)),
        ("documents", (LeadCreated.TYPE,)),
    ],
)
def test_a_service_binds_the_events_it_registers(service: str, events: tuple[str, ...]) -> None:
    app = importlib.import_module(f"services.{service}.app")
    assert app.build(app.SETTINGS()).subscriptions == events


async def service_handler(conn: asyncpg.Connection, deal: ProposalSent, meta: Meta) -> Outcome:
    raise AssertionError("not run here")


def test_an_event_type_has_one_handler_per_service() -> None:
    app = importlib.import_module("services.leads.app")
    service = app.build(app.SETTINGS())
    with pytest.raises(ValueError, match=r"proposals\.sent is registered twice"):
        service.event(ProposalSent, service_handler, "twice")
