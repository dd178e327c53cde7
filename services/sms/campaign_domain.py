"""Campaign rules: quiet hours, the send rate, status moves, counts. Pure: no I/O, time comes in as `now`."""

import math
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_zones

from services.sms.domain import TOOK_IT, SendOutcome
from shared.contracts.campaigns import CampaignCounts, TargetState
from shared.contracts.campaigns import CampaignStatus as C
from shared.contracts.sms import SmsStatus
from shared.problems import (
    CampaignClosed,
    CampaignNotStarted,
    NotFound,
    OptedOut,
    is_refusal,
)

FALLBACK_ZONE = "UTC"  # a number whose zone is unknown
BURST_SECONDS = 0.5  # at most this many seconds' worth of sends at once (a round of the dispatcher may be late)
IN_FLIGHT_SECONDS, MIN_IN_FLIGHT = 2.0, 10
PROGRESS_EVERY = timedelta(seconds=0.5)  # campaigns.progress at most twice a second per campaign
CLOSED = {C.completed, C.cancelled}


class Skipped(StrEnum):
    """Why a target was skipped: its `reason` (a failed target's reason is in the provider's words)."""

    opted_out = "opted_out"
    cancelled = "cancelled"
    not_found = "not found"


# Quiet hours ---------------------------------------------------------------------
def zone_name(own: str | None, phone: str) -> str:
    """The lead's own time zone when it has a valid one, else its phone number's first zone, else UTC."""
    if own and _exists(own):
        return own
    try:
        zones = phone_zones.time_zones_for_number(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        return FALLBACK_ZONE
    first = next((z for z in zones if _exists(z)), None)  # "Etc/Unknown" is not a zone
    return first or FALLBACK_ZONE


def _exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def next_allowed(now: datetime, zone: str, send_from: time, send_until: time) -> datetime:
    """`now` when the lead's local time is in [send_from, send_until), else the next local `send_from` (UTC):
    a send that falls in quiet hours is deferred, never dropped."""
    local = now.astimezone(ZoneInfo(zone))
    if send_from <= local.time() < send_until:
        return now
    day = local.date() if local.time() < send_from else local.date() + timedelta(days=1)
    # A `send_from` that a DST gap skips that day reads as the moment just after the gap.
    return datetime.combine(day, send_from, tzinfo=ZoneInfo(zone)).astimezone(UTC)


# Rate ----------------------------------------------------------------------------
def burst(rate: float) -> float:
    return max(1.0, rate * BURST_SECONDS)


def in_flight_limit(rate: float) -> int:
    """Sends handed to the SMS service and not yet answered, at most, per organisation: when the provider (or
    the service) is slower than the rate, the backlog stays a few seconds long instead of growing."""
    return max(MIN_IN_FLIGHT, math.ceil(rate * IN_FLIGHT_SECONDS))


def refill(tokens: float, since: datetime, now: datetime, rate: float) -> float:
    """A token bucket: `rate` sends a second, at most `burst(rate)` saved up."""
    elapsed = max(0.0, (now - since).total_seconds())
    return min(burst(rate), tokens + elapsed * rate)


# Status moves --------------------------------------------------------------------
# Each answers True (change it), False (already so: 200, nothing changes) or raises the refusal.
def check_start(status: C, campaign_id: str) -> bool:
    if status in CLOSED:
        raise closed(campaign_id, status, "started")
    return status == C.draft  # running or paused: a second start changes nothing


def check_pause(status: C, campaign_id: str) -> bool:
    _started(status, campaign_id, "paused")
    return status == C.running


def check_resume(status: C, campaign_id: str) -> bool:
    _started(status, campaign_id, "resumed")
    return status == C.paused


def check_cancel(status: C, campaign_id: str) -> bool:
    if status == C.completed:
        raise closed(campaign_id, status, "cancelled")
    return status != C.cancelled


def _started(status: C, campaign_id: str, verb: str) -> None:
    if status in CLOSED:
        raise closed(campaign_id, status, verb)
    if status == C.draft:
        raise CampaignNotStarted(
            f"campaign {campaign_id} was not started: it cannot be {verb}", currentStatus=str(status)
        )


def closed(campaign_id: str, status: C, verb: str) -> CampaignClosed:
    return CampaignClosed(f"campaign {campaign_id} is {status}: it cannot be {verb}", currentStatus=str(status))


# Counts and outcomes -------------------------------------------------------------
def counts(by_state: Mapping[str, int]) -> CampaignCounts:
    per = {state.value: int(by_state.get(state.value, 0)) for state in TargetState}
    return CampaignCounts(total=sum(per.values()), **per)


def finished(c: CampaignCounts) -> bool:
    """Nothing waits and nothing is on its way: a running campaign is then completed."""
    return c.waiting == 0 and c.sending == 0


def progress_due(last_at: datetime | None, last: CampaignCounts | None, now: datetime, current: CampaignCounts) -> bool:
    """A progress event when the counts changed, at most once per PROGRESS_EVERY."""
    return current != last and (last_at is None or now - last_at >= PROGRESS_EVERY)


def send_id(campaign_id: str, lead_id: str) -> str:
    """The message id of a target's SMS command: the same for every publication of it, so the SMS
    inbox (and the Sender's row per command) make it one SMS."""
    return str(uuid5(UUID(campaign_id), str(UUID(lead_id))))


def refused_outcome(body: Mapping[str, object]) -> tuple[TargetState, str]:
    """What a refused send (its problem body) makes of its target: an opted-out or unknown lead, or a
    cancelled campaign, is skipped; anything else failed."""
    if is_refusal(body, OptedOut):
        return TargetState.skipped, Skipped.opted_out
    if is_refusal(body, CampaignClosed):
        return TargetState.skipped, Skipped.cancelled
    if is_refusal(body, NotFound):  # the lead (or its campaign's template) is not there any more
        return TargetState.skipped, Skipped.not_found
    return TargetState.failed, str(body.get("detail"))


def sent_outcome(outcome: SendOutcome, sms_status: SmsStatus, reason: str) -> tuple[TargetState, str | None]:
    """What a send that got as far as the provider makes of its target (`outcome`: services.sms.sending.Result)."""
    if outcome in (SendOutcome.stopped, SendOutcome.opted_out):
        return TargetState.skipped, Skipped.opted_out
    if outcome == SendOutcome.sent or (outcome == SendOutcome.done and sms_status in TOOK_IT):
        return TargetState.sent, None
    return TargetState.failed, f"provider refused: {reason}" if reason else "failed"


def reply_outcome(status: int, body: Mapping[str, object]) -> tuple[TargetState, str | None] | None:
    """A target's outcome from the stored answer of its send (the SMS inbox); None while it is not final."""
    if status == 200:
        sms = body.get("sms")
        return (TargetState.sent, None) if isinstance(sms, dict) and sms.get("status") in TOOK_IT else None
    if 400 <= status < 500:
        return refused_outcome(body)
    return None
