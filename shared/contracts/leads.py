"""Leads: commands (routing keys `leads.*` on `commands`), queries, events, views."""
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, EmailStr, Field, StringConstraints

from shared.contracts.envelope import Incoming

SERVICE = "leads"


class LeadStatus(StrEnum):
    new = "new"
    contacted = "contacted"
    qualified = "qualified"
    proposal = "proposal"
    won = "won"
    lost = "lost"


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
LeadId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


# Commands ------------------------------------------------------------------
class CreateLead(Incoming):
    """`leads.create`"""

    name: Name
    phone: Phone
    email: EmailStr | None = None


class UpdateLeadStatus(Incoming):
    """`leads.update_status`"""

    leadId: LeadId
    status: LeadStatus
    expectedStatus: LeadStatus | None = None


class BulkUpdateLeadStatus(Incoming):
    """`leads.bulk_update_status`: all or nothing; a repeated id counts once."""

    leadIds: list[LeadId] = Field(min_length=1, max_length=1000)
    status: LeadStatus


COMMANDS: dict[str, type[Incoming]] = {
    "leads.create": CreateLead,
    "leads.update_status": UpdateLeadStatus,
    "leads.bulk_update_status": BulkUpdateLeadStatus,
}


# Queries (exchange `queries`; answered, never deduped) ---------------------
class GetLead(Incoming):
    leadId: LeadId


class ListLeads(Incoming):
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


# Events (exchange `events`, routing key = type) ----------------------------
class LeadCreated(BaseModel):
    """data of `leads.created`"""

    leadId: str
    name: str
    phone: str
    email: str | None
    status: LeadStatus
    createdAt: datetime
    by: str


class LeadStatusChanged(BaseModel):
    """data of `leads.status_changed`"""

    leadId: str
    from_: LeadStatus = Field(alias="from")
    to: LeadStatus
    changedAt: datetime
    by: str

    model_config = {"populate_by_name": True}


EVENTS: dict[str, type[BaseModel]] = {"leads.created": LeadCreated, "leads.status_changed": LeadStatusChanged}
