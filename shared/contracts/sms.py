"""SMS: commands (`sms.*` on `commands`), queries, events, views."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.contracts.declare import Button, Read
from shared.contracts.envelope import Command, EventData, Query
from shared.contracts.leads import LeadId
from shared.problems import AlreadyExists, NotFound, OptedOut, ProviderRefused

SERVICE = "sms"
MAX_LENGTH = 1600


class SmsStatus(StrEnum):
    """Forward only: queued → sending → sent → delivered | undelivered | failed."""

    queued = "queued"
    sending = "sending"
    sent = "sent"
    delivered = "delivered"
    undelivered = "undelivered"
    failed = "failed"


# Commands ------------------------------------------------------------------
class SendSms(Command):
    """`message`, or a stored template (`templateId`) filled from the lead."""

    ROUTING_KEY = "sms.send"

    # The rule of `_one_source`, said in the published schemas (OpenAPI, AsyncAPI) too.
    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"anyOf": [{"required": ["message"]}, {"required": ["templateId"]}]}
    )

    leadId: LeadId
    message: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_LENGTH)] | None = None
    templateId: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "SendSms":
        if self.message is None and self.templateId is None:
            raise ValueError("give message (1 to 1600 characters) or templateId")
        return self


class CreateTemplate(Command):
    """Fields like {{first_name}} are filled from the lead when sending."""

    ROUTING_KEY = "sms.create_template"

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_LENGTH)]


class ProviderStatus(Command):
    """A status callback from the provider (signature checked by the gateway)."""

    ROUTING_KEY = "sms.provider_status"
    INTERNAL = True  # a webhook the gateway checked the signature of

    sid: str
    status: str
    errorCode: int | None = None


class InboundSms(Command):
    """A message a lead sent us (STOP, START, ...), signature checked by the gateway."""

    ROUTING_KEY = "sms.inbound"
    INTERNAL = True  # a signed webhook: a STOP opts the number out for every organisation

    sid: str
    from_: str = Field(alias="from")
    to: str
    body: str

    model_config = ConfigDict(populate_by_name=True)


# Queries -------------------------------------------------------------------
class SmsHistory(Query):
    ROUTING_KEY = "sms.query.history"
    leadId: LeadId


class ListTemplates(Query):
    ROUTING_KEY = "sms.query.templates"


# Views ---------------------------------------------------------------------
class SmsView(BaseModel):
    id: str
    status: SmsStatus
    sentAt: datetime | None


class SmsReply(BaseModel):
    sms: SmsView


class SmsRecord(BaseModel):
    id: str
    body: str
    status: SmsStatus
    provider_sid: str | None
    error_code: int | None
    segments: int
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None


class SmsHistoryReply(BaseModel):
    sms_messages: list[SmsRecord]


class TemplateView(BaseModel):
    id: str
    name: str
    body: str
    fields: list[str]
    created_at: datetime


class TemplateReply(BaseModel):
    template: TemplateView


class TemplateList(BaseModel):
    templates: list[TemplateView]


# Events --------------------------------------------------------------------
class SmsSent(EventData):
    """data of `sms.sent`"""

    TYPE = "sms.sent"

    smsId: str
    leadId: str
    providerSid: str
    segments: int
    sentAt: datetime


class SmsFailed(EventData):
    """data of `sms.failed`"""

    TYPE = "sms.failed"

    smsId: str
    leadId: str
    errorCode: int | None
    reason: str


class SmsStatusChanged(EventData):
    """data of `sms.status_changed`"""

    TYPE = "sms.status_changed"

    smsId: str
    leadId: str
    from_: SmsStatus = Field(alias="from")
    to: SmsStatus
    errorCode: int | None = None

    model_config = ConfigDict(populate_by_name=True)


class OptOutChanged(EventData):
    """data of `sms.opt_out_changed`"""

    TYPE = "sms.opt_out_changed"

    leadId: str
    phone: str
    optedOut: bool
    keyword: str


EVENTS: tuple[type[EventData], ...] = (SmsSent, SmsFailed, SmsStatusChanged, OptOutChanged)


BUTTONS = (
    Button(
        "send_sms",
        "/api/leads/send-sms",
        SendSms,
        SmsReply,
        "Text a lead (status sent, or queued while the provider is unavailable)",
        cli="sms send leadId message",
        breaker=True,
        refusals=(NotFound, OptedOut, ProviderRefused),
        events=(SmsSent, SmsFailed, OptOutChanged),
    ),
    Button(
        "create_template",
        "/api/sms/templates",
        CreateTemplate,
        TemplateReply,
        "Store an SMS template ({{first_name}}-style fields)",
        status=201,
        cli="sms template name body",
        refusals=(AlreadyExists,),
    ),
)
READS = (
    Read(
        "sms_history",
        "/api/leads/{leadId}/sms-history",
        SmsHistory,
        SmsHistoryReply,
        "A lead's SMS, newest first",
        cli="sms history leadId",
    ),
    Read(
        "list_templates",
        "/api/sms/templates",
        ListTemplates,
        TemplateList,
        "The organisation's SMS templates",
        cli="sms templates",
    ),
)
