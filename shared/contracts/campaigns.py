"""Campaigns (the SMS service): a template texted to many leads, exactly once each, over hours.

    create ─► draft ─start─► running ⇄ paused ─► completed      (cancel: draft, running or paused ─► cancelled)

At start the audience (a list of leads, or every lead of a status) is resolved once and
recorded: one target per lead. Each target is sent at most once (its send's message id is
derived from (campaign, lead), so the SMS inbox dedupes any replay), never in the lead's quiet
hours (deferred to the next allowed moment), never to an opted-out lead (skipped), at the
organisation's rate, and not while the provider breaker is open (sending pauses).
"""

from datetime import datetime, time
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from shared.contracts.declare import Button, Read
from shared.contracts.envelope import Command, EventData, Query
from shared.contracts.leads import LeadId, LeadStatus
from shared.problems import CampaignClosed, CampaignNotStarted, NotFound

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MAX_TARGETS = 10_000


class CampaignStatus(StrEnum):
    draft = "draft"
    running = "running"
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"


class TargetState(StrEnum):
    """waiting (not sent yet, maybe deferred) → sending → sent | skipped (opted out, no lead) | failed."""

    waiting = "waiting"
    sending = "sending"
    sent = "sent"
    skipped = "skipped"
    failed = "failed"


# Commands ------------------------------------------------------------------
class CreateCampaign(Command):
    """A template and an audience: `leadIds`, or `status` (every lead of that status when it starts)."""

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"oneOf": [{"required": ["leadIds"]}, {"required": ["status"]}]}
    )

    ROUTING_KEY = "sms.create_campaign"
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    templateId: Id
    leadIds: list[LeadId] | None = Field(None, min_length=1, max_length=MAX_TARGETS)
    status: LeadStatus | None = None
    # Sends only between sendFrom and sendUntil in the lead's local time (its own time zone when set,
    # else its phone number's); a send that falls outside waits for the next sendFrom, never dropped.
    sendFrom: time = time(8, 0)
    sendUntil: time = time(21, 0)

    @field_validator("sendFrom", "sendUntil")
    @classmethod
    def _local(cls, value: time) -> time:
        if value.tzinfo is not None:  # the window is in each lead's own local time: an offset has no meaning
            raise ValueError("a local time of day without an offset, e.g. 08:00")
        return value

    @model_validator(mode="after")
    def _one_audience(self) -> "CreateCampaign":
        if (self.leadIds is None) == (self.status is None):
            raise ValueError("give leadIds or status (the audience), not both")
        if self.sendFrom >= self.sendUntil:
            raise ValueError("sendFrom must be before sendUntil")
        return self


class StartCampaign(Command):
    """Resolves and records the audience, then sends; a second start changes nothing."""

    ROUTING_KEY = "sms.start_campaign"
    campaignId: Id


class SendCampaignSms(Command):
    """Internal: one target's SMS, published by the campaign dispatcher of the SMS service (never by the gateway).
    Its message id is derived from (campaignId, leadId), so every publication of it is one command."""

    ROUTING_KEY = "sms.send_campaign_sms"
    INTERNAL = True  # the campaign dispatcher's
    campaignId: Id
    leadId: LeadId


class PauseCampaign(Command):
    ROUTING_KEY = "sms.pause_campaign"
    campaignId: Id


class ResumeCampaign(Command):
    ROUTING_KEY = "sms.resume_campaign"
    campaignId: Id


class CancelCampaign(Command):
    """Nothing more is sent; what was sent stays sent."""

    ROUTING_KEY = "sms.cancel_campaign"
    campaignId: Id


# Queries -------------------------------------------------------------------
class GetCampaign(Query):
    ROUTING_KEY = "sms.query.campaign"
    campaignId: Id
    # Per-lead outcomes are paged (by lead id).
    limit: int = Field(100, ge=1, le=1000)
    after: str | None = None


class ListCampaigns(Query):
    ROUTING_KEY = "sms.query.campaigns"
    # Newest first, paged: `after` is the last campaign id of the page before (its `next_after`).
    limit: int = Field(50, ge=1, le=200)
    after: str | None = None


# Views ---------------------------------------------------------------------
class CampaignCounts(BaseModel):
    total: int
    waiting: int
    sending: int
    sent: int
    skipped: int
    failed: int


class CampaignView(BaseModel):
    id: str
    name: str
    template_id: str
    status: CampaignStatus
    audience: dict[str, object]  # {"leadIds": [...]} or {"status": "qualified"}
    send_from: time
    send_until: time
    counts: CampaignCounts
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TargetView(BaseModel):
    lead_id: str
    state: TargetState
    next_at: datetime | None  # when a waiting target may go (after quiet hours)
    sms_id: str | None
    reason: str | None  # why skipped or failed
    updated_at: datetime


class CampaignReply(BaseModel):
    campaign: CampaignView


class CampaignDetail(BaseModel):
    campaign: CampaignView
    targets: list[TargetView]
    next_after: str | None  # pass as `after` for the next page


class CampaignList(BaseModel):
    campaigns: list[CampaignView]
    next_after: str | None = None  # more campaigns: ask again with ?after= this


# Events --------------------------------------------------------------------
class CampaignChanged(EventData):
    """data of every `campaigns.*` event but progress: the campaign's status and counts."""

    campaignId: str
    status: CampaignStatus
    counts: CampaignCounts
    at: datetime
    by: str


class CampaignCreated(CampaignChanged):
    """data of `campaigns.created`"""

    TYPE = "campaigns.created"


class CampaignStarted(CampaignChanged):
    """data of `campaigns.started` (the audience is resolved: counts.total)"""

    TYPE = "campaigns.started"


class CampaignPaused(CampaignChanged):
    """data of `campaigns.paused`"""

    TYPE = "campaigns.paused"


class CampaignResumed(CampaignChanged):
    """data of `campaigns.resumed`"""

    TYPE = "campaigns.resumed"


class CampaignCancelled(CampaignChanged):
    """data of `campaigns.cancelled`"""

    TYPE = "campaigns.cancelled"


class CampaignProgress(CampaignChanged):
    """data of `campaigns.progress` (at most a few a second per campaign)"""

    TYPE = "campaigns.progress"


class CampaignCompleted(CampaignChanged):
    """data of `campaigns.completed` (no target is waiting or sending any more)"""

    TYPE = "campaigns.completed"


EVENTS: tuple[type[EventData], ...] = (
    CampaignCreated,
    CampaignStarted,
    CampaignPaused,
    CampaignResumed,
    CampaignCancelled,
    CampaignProgress,
    CampaignCompleted,
)


BUTTONS = (
    Button(
        "create_campaign",
        "/api/campaigns",
        CreateCampaign,
        CampaignReply,
        "Create a campaign: a template and its audience (leadIds, or every lead of a status at start)",
        status=201,
        cli="campaign create name templateId",
        refusals=(NotFound,),
        events=(CampaignCreated,),
    ),
    Button(
        "start_campaign",
        "/api/campaigns/{campaignId}/start",
        StartCampaign,
        CampaignReply,
        "Start a campaign (its audience is resolved and recorded once)",
        cli="campaign start campaignId",
        refusals=(NotFound, CampaignClosed),
        events=(CampaignStarted,),
    ),
    Button(
        "pause_campaign",
        "/api/campaigns/{campaignId}/pause",
        PauseCampaign,
        CampaignReply,
        "Pause a running campaign",
        cli="campaign pause campaignId",
        refusals=(NotFound, CampaignClosed, CampaignNotStarted),
        events=(CampaignPaused,),
    ),
    Button(
        "resume_campaign",
        "/api/campaigns/{campaignId}/resume",
        ResumeCampaign,
        CampaignReply,
        "Resume a paused campaign",
        cli="campaign resume campaignId",
        refusals=(NotFound, CampaignClosed, CampaignNotStarted),
        events=(CampaignResumed,),
    ),
    Button(
        "cancel_campaign",
        "/api/campaigns/{campaignId}/cancel",
        CancelCampaign,
        CampaignReply,
        "Cancel a campaign (nothing more is sent)",
        cli="campaign cancel campaignId",
        refusals=(NotFound, CampaignClosed),
        events=(CampaignCancelled,),
    ),
)
READS = (
    Read(
        "get_campaign",
        "/api/campaigns/{campaignId}",
        GetCampaign,
        CampaignDetail,
        "A campaign with its counts and per-lead outcomes (paged: ?limit=&after=)",
        cli="campaign get campaignId",
    ),
    Read(
        "list_campaigns",
        "/api/campaigns",
        ListCampaigns,
        CampaignList,
        "The organisation's campaigns, newest first (paged: ?limit=&after=)",
        cli="campaign list",
    ),
)
