"""Campaign rules with a controllable clock: quiet hours, the send rate, status moves, counts, outcomes."""

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from services.sms import campaign_domain as rules
from services.sms.campaign_domain import Skipped
from services.sms.domain import SendOutcome
from shared.contracts.campaigns import CampaignCounts, CreateCampaign, TargetState
from shared.contracts.campaigns import CampaignStatus as C
from shared.contracts.leads import CreateLead
from shared.contracts.sms import SmsStatus as S
from shared.problems import (
    CampaignClosed,
    CampaignNotStarted,
    OptedOut,
    ProviderRefused,
    not_found,
)

PARIS = "Europe/Paris"
DAY = (time(8, 0), time(21, 0))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# Quiet hours -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2030-01-15T12:00:00+01:00", "2030-01-15T12:00:00+01:00"),  # inside: now
        ("2030-01-15T08:00:00+01:00", "2030-01-15T08:00:00+01:00"),  # the window opens at sendFrom (included)
        ("2030-01-15T20:59:59+01:00", "2030-01-15T20:59:59+01:00"),
        ("2030-01-15T21:00:00+01:00", "2030-01-16T08:00:00+01:00"),  # sendUntil is excluded: tomorrow morning
        ("2030-01-15T23:30:00+01:00", "2030-01-16T08:00:00+01:00"),
        ("2030-01-15T03:00:00+01:00", "2030-01-15T08:00:00+01:00"),  # before the window: this morning
        ("2030-12-31T22:00:00+01:00", "2031-01-01T08:00:00+01:00"),  # across the year
    ],
)
def test_a_send_in_quiet_hours_waits_for_the_next_allowed_moment(now: str, expected: str) -> None:
    assert rules.next_allowed(at(now), PARIS, *DAY) == at(expected)


def test_quiet_hours_are_the_leads_local_time_not_ours() -> None:
    now = at("2030-01-15T12:00:00+00:00")  # noon in London: 04:00 in Los Angeles, 21:00 in Tokyo
    assert rules.next_allowed(now, "Europe/London", *DAY) == now
    assert rules.next_allowed(now, "America/Los_Angeles", *DAY) == at("2030-01-15T08:00:00-08:00")
    assert rules.next_allowed(now, "Asia/Tokyo", *DAY) == at("2030-01-16T08:00:00+09:00")


def test_the_window_follows_daylight_saving_time() -> None:
    # Paris moves to summer time on 2030-03-31 at 02:00: 08:00 local is 06:00 UTC from then on.
    assert rules.next_allowed(at("2030-03-30T22:00:00+00:00"), PARIS, *DAY) == at("2030-03-31T06:00:00+00:00")
    # A window opening in the skipped hour opens just after the gap, never before `now`.
    now = at("2030-03-31T00:30:00+00:00")  # 01:30 in Paris
    opened = rules.next_allowed(now, PARIS, time(2, 30), time(5, 0))
    assert now < opened <= at("2030-03-31T01:30:00+00:00")


def test_a_deferred_send_is_never_dropped_whatever_the_clock() -> None:
    now = at("2030-06-01T00:00:00+00:00")
    for minutes in range(0, 48 * 60, 7):
        clock = now + timedelta(minutes=minutes)
        allowed = rules.next_allowed(clock, "America/New_York", time(9, 30), time(9, 45))
        local = allowed.astimezone(rules.ZoneInfo("America/New_York")).time()
        assert clock <= allowed < clock + timedelta(days=1)
        assert time(9, 30) <= local < time(9, 45)


@pytest.mark.parametrize(
    ("own", "phone", "zone"),
    [
        ("Asia/Tokyo", "+14155550100", "Asia/Tokyo"),  # the lead's own zone wins
        (None, "+14155550100", "America/Los_Angeles"),  # else its number's (San Francisco)
        (None, "+33142685300", PARIS),
        (None, "+447700900123", "UTC"),  # a number whose zone is unknown ("Etc/Unknown")
        ("Not/AZone", "+14155550100", "America/Los_Angeles"),
        (None, "not a number", "UTC"),
    ],
)
def test_the_leads_time_zone(own: str | None, phone: str, zone: str) -> None:
    assert rules.zone_name(own, phone) == zone


def test_the_window_must_be_a_local_time_of_day_and_open_before_it_closes() -> None:
    base = {"name": "Spring", "templateId": "t", "leadIds": ["a"]}
    assert CreateCampaign.model_validate(base).sendFrom == time(8, 0)
    for bad in (
        {"sendFrom": "21:00", "sendUntil": "08:00"},
        {"sendFrom": "08:00+02:00"},
        {"sendFrom": "10:00", "sendUntil": "10:00"},
    ):
        with pytest.raises(ValidationError):
            CreateCampaign.model_validate({**base, **bad})


def test_a_campaign_has_one_audience() -> None:
    audiences: list[dict[str, object]] = [{}, {"leadIds": ["a"], "status": "new"}, {"leadIds": []}]
    for audience in audiences:
        with pytest.raises(ValidationError):
            CreateCampaign.model_validate({"name": "x", "templateId": "t", **audience})


def test_a_leads_own_time_zone_must_be_an_iana_name() -> None:
    assert CreateLead(name="Ada", phone="+1415", timeZone="Europe/Paris").timeZone == "Europe/Paris"
    assert CreateLead(name="Ada", phone="+1415").timeZone is None
    for bad in ("Mars/Olympus", "../etc/passwd", "", "America/"):
        with pytest.raises(ValidationError):
            CreateLead(name="Ada", phone="+1415", timeZone=bad)


# Rate --------------------------------------------------------------------------------
def test_the_bucket_refills_at_the_rate_up_to_a_small_burst() -> None:
    t0 = at("2030-01-15T12:00:00+00:00")
    assert rules.refill(0, t0, t0 + timedelta(seconds=2), rate=10) == pytest.approx(5)  # capped: 0.5 s' worth
    assert rules.refill(0, t0, t0 + timedelta(seconds=0.1), rate=10) == pytest.approx(1)
    assert rules.refill(0.5, t0, t0 + timedelta(seconds=1), rate=1) == 1  # at least one send can go
    assert rules.refill(3, t0, t0 - timedelta(seconds=5), rate=10) == 3  # a clock that went back adds nothing


def test_sends_over_time_never_exceed_the_rate() -> None:
    rate, clock, tokens, sent = 5.0, at("2030-01-15T12:00:00+00:00"), rules.burst(5.0), 0
    since = clock
    for _ in range(100):  # ten seconds in ticks of 0.1 s, taking every whole token
        clock += timedelta(seconds=0.1)
        tokens = rules.refill(tokens, since, clock, rate)
        since = clock
        sent += int(tokens)
        tokens -= int(tokens)
    assert rate * 10 - 1 <= sent <= rate * 10 + rules.burst(rate)


def test_what_is_handed_over_and_not_answered_is_bounded() -> None:
    assert rules.in_flight_limit(200) == 400  # two seconds' worth
    assert rules.in_flight_limit(1) == rules.MIN_IN_FLIGHT


# Status moves ------------------------------------------------------------------------
def test_start_pause_resume_cancel() -> None:
    cid = str(uuid4())
    assert rules.check_start(C.draft, cid) is True
    assert rules.check_start(C.running, cid) is False and rules.check_start(C.paused, cid) is False  # no change
    assert rules.check_pause(C.running, cid) is True and rules.check_pause(C.paused, cid) is False
    assert rules.check_resume(C.paused, cid) is True and rules.check_resume(C.running, cid) is False
    assert all(rules.check_cancel(s, cid) for s in (C.draft, C.running, C.paused))
    assert rules.check_cancel(C.cancelled, cid) is False


@pytest.mark.parametrize("check", [rules.check_start, rules.check_pause, rules.check_resume])
@pytest.mark.parametrize("status", [C.completed, C.cancelled])
def test_a_closed_campaign_is_refused_409(check: Callable[[C, str], bool], status: C) -> None:
    with pytest.raises(CampaignClosed) as refused:
        check(status, "c1")
    assert refused.value.status == 409 and refused.value.body["currentStatus"] == status


def test_pausing_a_draft_is_refused_and_a_completed_campaign_cannot_be_cancelled() -> None:
    for check in (rules.check_pause, rules.check_resume):
        with pytest.raises(CampaignNotStarted):
            check(C.draft, "c1")
    with pytest.raises(CampaignClosed):
        rules.check_cancel(C.completed, "c1")


# Counts, progress, outcomes ----------------------------------------------------------
def test_counts_and_completion() -> None:
    counts = rules.counts({"sent": 3, "skipped": 1, "waiting": 2})
    assert counts == CampaignCounts(total=6, waiting=2, sending=0, sent=3, skipped=1, failed=0)
    assert not rules.finished(counts)
    assert not rules.finished(rules.counts({"sending": 1, "sent": 5}))
    assert rules.finished(rules.counts({"sent": 5, "failed": 1})) and rules.finished(rules.counts({}))


def test_progress_is_throttled_and_only_says_something_new() -> None:
    t0 = at("2030-01-15T12:00:00+00:00")
    before, after = rules.counts({"waiting": 2}), rules.counts({"waiting": 1, "sent": 1})
    assert rules.progress_due(None, None, t0, before)
    assert not rules.progress_due(t0, before, t0 + timedelta(seconds=5), before)  # nothing new
    assert not rules.progress_due(t0, before, t0 + timedelta(seconds=0.2), after)  # too soon
    assert rules.progress_due(t0, before, t0 + rules.PROGRESS_EVERY, after)


def test_one_message_id_per_campaign_and_lead() -> None:
    campaign, lead = str(uuid4()), str(uuid4())
    assert rules.send_id(campaign, lead) == rules.send_id(campaign, lead.upper())
    assert rules.send_id(campaign, lead) != rules.send_id(str(uuid4()), lead)
    assert rules.send_id(campaign, lead) != rules.send_id(campaign, str(uuid4()))


def test_what_a_send_makes_of_its_target() -> None:
    assert rules.refused_outcome(OptedOut("lead x opted out").body) == (TargetState.skipped, Skipped.opted_out)
    assert rules.refused_outcome(rules.closed("c", C.cancelled, "sent").body) == (TargetState.skipped, "cancelled")
    assert rules.refused_outcome(not_found("lead", "x").body) == (TargetState.skipped, "not found")
    assert rules.refused_outcome(ProviderRefused("21211").body) == (TargetState.failed, "21211")
    assert rules.refused_outcome({"type": "/problems/somebody-elses"}) == (TargetState.failed, "None")
    assert rules.sent_outcome(SendOutcome.sent, S.sent, "") == (TargetState.sent, None)
    for opted_out in (SendOutcome.stopped, SendOutcome.opted_out):
        assert rules.sent_outcome(opted_out, S.failed, "") == (TargetState.skipped, Skipped.opted_out)
    assert rules.sent_outcome(SendOutcome.done, S.delivered, "") == (TargetState.sent, None)
    assert rules.sent_outcome(SendOutcome.done, S.failed, "")[0] == TargetState.failed
    assert rules.sent_outcome(SendOutcome.failed, S.failed, "21211: invalid")[0] == TargetState.failed
    assert rules.reply_outcome(200, {"sms": {"status": "sent"}}) == (TargetState.sent, None)
    assert rules.reply_outcome(409, OptedOut("x").body) == (TargetState.skipped, Skipped.opted_out)
    assert rules.reply_outcome(503, {}) is None and rules.reply_outcome(200, {"sms": {"status": "queued"}}) is None
