"""The campaigns' clock: what quiet hours, pacing, deferrals and progress read as "now".

Wall time in UTC, shifted by CAMPAIGN_CLOCK_OFFSET_SECONDS (0 in production). A test hook that keeps the
clock real: a test starts the service with its campaigns' clock a few seconds before a send window opens, and
watches a deferred send go when it does (tests/integration/test_campaign_clock.py), instead of waiting for an
hour of the day. Only the campaign code reads it; single sends, leases and tokens keep the wall clock.
"""

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def shift(seconds: float) -> None:
    """Set once, when the service is built."""
    global _offset
    _offset = timedelta(seconds=seconds)


def now() -> datetime:
    return datetime.now(UTC) + _offset
