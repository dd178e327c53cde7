"""Quiet hours on a controllable clock: a send deferred by the window goes when the window opens, once.

The SMS service is restarted with its campaigns' clock (services/sms/clock.py) LEAD seconds before 03:00 UTC;
the leads live in UTC and the window is 03:00-04:00, so at start every target waits for 03:00 exactly, and
the clock then runs on by itself into the window. The unit tests cover the window's arithmetic
(tests/unit/test_campaign_rules.py); this proves the dispatcher acts on it, whatever hour CI runs at.
"""

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from email.utils import parsedate_to_datetime

from tests.conftest import Api
from tests.e2e.test_campaigns import (
    completed,
    create,
    detail,
    leads,
    press,
    template,
    texts,
    when,
)
from tests.integration.test_campaign_crash import restarted
from tests.support.sandbox import Sandbox
from tests.support.stack import Stack

LEAD = timedelta(seconds=15)  # the restart and the start press fit well inside it


async def test_a_send_deferred_by_quiet_hours_goes_once_when_the_window_opens(
    api: Api, sandbox: Sandbox, stack: Stack
) -> None:
    audience = await leads(api, 2, timeZone="UTC")
    campaign = await create(api, await template(api), leadIds=list(audience), sendFrom="03:00", sendUntil="04:00")
    stack.processes["sms"].stop()  # first: LEAD counts from the start below, not from a slow stop
    wall = datetime.now(UTC)
    opening = datetime.combine(wall.date(), time(3), tzinfo=UTC)  # on the campaigns' clock
    if opening - LEAD > wall:  # a clock behind the wall's, never ahead: what it writes is never "not yet"
        opening -= timedelta(days=1)  # for the others' rows (pace, dispatch times) when the wall clock is back
    offset = opening - LEAD - wall
    await restarted(stack, CAMPAIGN_CLOCK_OFFSET_SECONDS=str(offset.total_seconds()))
    try:
        started = (await press(api, campaign["id"], "start"))["campaign"]
        assert started["counts"]["waiting"] == 2, started
        targets = (await detail(api, campaign["id"]))["targets"]
        assert {(t["state"], datetime.fromisoformat(t["next_at"])) for t in targets} == {("waiting", opening)}
        assert await texts(sandbox, audience.values()) == Counter()  # deferred, not sent
        done = await when(api, campaign["id"], completed, "the deferred sends to go at 03:00", 2 * LEAD.seconds)
        assert done["campaign"]["counts"]["sent"] == 2, done
        assert await texts(sandbox, audience.values()) == Counter(audience.values())  # one SMS each
        opened_on_the_wall = (opening - offset).replace(microsecond=0)  # the sandbox's dates are to the second
        for phone in audience.values():
            (message,) = await sandbox.messages_to(phone)
            assert parsedate_to_datetime(message["date_created"]) >= opened_on_the_wall, (message, opened_on_the_wall)
    finally:
        await restarted(stack)  # the wall clock again
