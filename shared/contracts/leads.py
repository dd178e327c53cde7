"""Leads: commands (routing keys `leads.*` on `commands`), queries, events, views."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
)

from shared.contracts.declare import Button, Read
from shared.contracts.envelope import Command, EventData, Query
from shared.problems import BulkRefused, ForbiddenMove, NotFound, StatusConflict

SERVICE = "leads"


class LeadStatus(StrEnum):
    new = "new"
    contacted = "contacted"
    qualified = "qualified"
    proposal = "proposal"
    won = "won"
    lost = "lost"


# The allowed status moves: the one copy of the rule. The leads domain enforces it;
# the gateway publishes it (GET /api/leads/statuses, the OpenAPI document) so that
# screens offer only these. Forward along the pipeline (skipping allowed), any open
# status to lost, lost back to new; won is final.
_S = LeadStatus
PIPELINE = (_S.new, _S.contacted, _S.qualified, _S.proposal, _S.won)
MOVES: dict[LeadStatus, tuple[LeadStatus, ...]] = {
    **{s: (*PIPELINE[i + 1 :], _S.lost) for i, s in enumerate(PIPELINE[:-1])},
    _S.won: (),
    _S.lost: (_S.new,),
}


def can_move(current: LeadStatus, target: LeadStatus) -> bool:
    return target in MOVES[current]


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
LeadId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Paris)") from None
    return name


# A lead's own time zone (IANA name); without one, its phone number's is used (SMS campaigns' quiet hours).
TimeZone = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), AfterValidator(_known_zone)
]


# Commands ------------------------------------------------------------------
class CreateLead(Command):
    ROUTING_KEY = "leads.create"

    name: Name
    phone: Phone
    email: EmailStr | None = None
    timeZone: TimeZone | None = None


class UpdateLeadStatus(Command):
    ROUTING_KEY = "leads.update_status"

    leadId: LeadId
    status: LeadStatus
    expectedStatus: LeadStatus | None = None


class BulkUpdateLeadStatus(Command):
    """All or nothing; a repeated id counts once."""

    ROUTING_KEY = "leads.bulk_update_status"

    leadIds: list[LeadId] = Field(min_length=1, max_length=1000)
    status: LeadStatus


# Queries (exchange `queries`; answered, never deduped) ---------------------
class GetLead(Query):
    ROUTING_KEY = "leads.query.get"
    leadId: LeadId


class GetLeads(Query):
    """Internal (the other services' lead directories): which of these ids are leads of the caller's
    organisation, in one question instead of one per id."""

    ROUTING_KEY = "leads.query.get_many"
    leadIds: list[LeadId] = Field(min_length=1, max_length=1000)


class LeadHistory(Query):
    ROUTING_KEY = "leads.query.history"
    leadId: LeadId


class ListLeads(Query):
    ROUTING_KEY = "leads.query.list"
    status: LeadStatus | None = None
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = None


# Views (reply bodies) -------------------------------------------------------
class LeadView(BaseModel):
    id: str
    name: str
    phone: str
    email: str | None
    status: LeadStatus
    status_changed_at: datetime
    created_at: datetime
    timeZone: str | None = None  # in answers only when the lead has one (additive: older readers see no change)

    # No return annotation on purpose: the published schema stays the model's own.
    @model_serializer(mode="wrap")
    def _zone_when_set(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]  # see above
        data: dict[str, Any] = handler(self)
        if data.get("timeZone") is None:
            data.pop("timeZone", None)
        return data


class LeadStatusView(BaseModel):
    id: str
    status: LeadStatus
    status_changed_at: datetime


class LeadReply(BaseModel):
    lead: LeadView


class LeadStatusReply(BaseModel):
    lead: LeadStatusView


class BulkFailure(BaseModel):
    leadId: str
    reason: str


class BulkReply(BaseModel):
    updated: int
    failed: list[BulkFailure]
    leads: list[LeadStatusView]


class LeadPage(BaseModel):
    leads: list[LeadView]
    next_cursor: str | None


class HistoryEntry(BaseModel):
    """One status change of a lead: who moved it, from what to what, when, by which command."""

    from_: LeadStatus = Field(alias="from")
    to: LeadStatus
    at: datetime
    by: str
    command_id: str | None

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class HistoryReply(BaseModel):
    history: list[HistoryEntry]


class StatusesReply(BaseModel):
    """The statuses and, for each, the statuses it may move to (MOVES)."""

    statuses: list[LeadStatus]
    moves: dict[LeadStatus, list[LeadStatus]]


def statuses_reply() -> StatusesReply:
    return StatusesReply(statuses=list(LeadStatus), moves={s: list(m) for s, m in MOVES.items()})


# Events (exchange `events`, routing key = type) ----------------------------
class LeadCreated(EventData):
    """data of `leads.created`"""

    TYPE = "leads.created"

    leadId: str
    name: str
    phone: str
    email: str | None
    status: LeadStatus
    createdAt: datetime
    by: str
    timeZone: str | None = None


class LeadStatusChanged(EventData):
    """data of `leads.status_changed`"""

    TYPE = "leads.status_changed"

    leadId: str
    from_: LeadStatus = Field(alias="from")
    to: LeadStatus
    changedAt: datetime
    by: str

    model_config = ConfigDict(populate_by_name=True)


EVENTS: tuple[type[EventData], ...] = (LeadCreated, LeadStatusChanged)


# The buttons and reads (shared/contracts/declare.py) -------------------------
BUTTONS = (
    Button(
        "create_lead",
        "/api/leads",
        CreateLead,
        LeadReply,
        "Create a lead",
        status=201,
        cli="lead create name phone",
        events=(LeadCreated,),
    ),
    Button(
        "update_lead_status",
        "/api/leads/update-status",
        UpdateLeadStatus,
        LeadStatusReply,
        "Change the status of one lead",
        selector="leadId",
        cli="lead status leadId status",
        flags={"expectedStatus": "--expected"},
        refusals=(NotFound, ForbiddenMove, StatusConflict),
        events=(LeadStatusChanged,),
    ),
    Button(
        "bulk_update_lead_status",
        "/api/leads/update-status",
        BulkUpdateLeadStatus,
        BulkReply,
        "Change the status of many leads at once (all or nothing)",
        selector="leadIds",
        cli="lead bulk-status status leadIds",
        refusals=(BulkRefused,),
        events=(LeadStatusChanged,),
    ),
)
READS = (
    Read(
        "list_leads",
        "/api/leads",
        ListLeads,
        LeadPage,
        "A page of leads, oldest first (status filter, cursor)",
        cli="lead list",
    ),
    Read("get_lead", "/api/leads/{leadId}", GetLead, LeadReply, "One lead", cli="lead get leadId"),
    Read(
        "lead_history",
        "/api/leads/{leadId}/history",
        LeadHistory,
        HistoryReply,
        "A lead's status changes, newest first",
        cli="lead history leadId",
    ),
)
