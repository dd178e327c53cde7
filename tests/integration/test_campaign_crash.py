"""A campaign survives the SMS service being killed: still exactly one SMS per lead.

Killed at any moment mid-campaign (sends queued, attempts claimed, answers not yet recorded), and killed at
the worst moment of the dispatcher: after it committed targets as sending, before it published their commands.
"""

import signal
from collections import Counter

from tests.conftest import Api
from tests.e2e.test_campaigns import (
    completed,
    create,
    leads,
    press,
    template,
    texts,
    when,
)
from tests.support.sandbox import Sandbox
from tests.support.stack import Stack, eventually


async def restarted(stack: Stack, **env: str) -> None:
    stack.start("sms", **env)
    await stack.wait_started("sms")


async def test_killed_mid_campaign_every_lead_is_still_texted_once(api: Api, sandbox: Sandbox, stack: Stack) -> None:
    audience = await leads(api, 40)
    campaign = await create(api, await template(api), leadIds=list(audience))
    await press(api, campaign["id"], "start")

    async def some_sent() -> bool:
        return 5 <= sum((await texts(sandbox, audience.values())).values()) < 40

    await eventually(some_sent, 15, 0.02, "the campaign to be under way")
    assert stack.processes["sms"].stop(signal.SIGKILL) == -signal.SIGKILL
    before = sum((await texts(sandbox, audience.values())).values())
    assert before < 40, "the campaign was over before the kill: nothing was tested"
    await restarted(stack)
    done = await when(api, campaign["id"], completed, "the campaign to complete after the restart", 45)
    assert done["campaign"]["counts"]["sent"] == 40
    assert await texts(sandbox, audience.values()) == Counter(audience.values())


async def test_killed_between_dispatch_and_publish_the_targets_are_published_again(
    api: Api, sandbox: Sandbox, stack: Stack
) -> None:
    audience = await leads(api, 5)
    campaign = await create(api, await template(api), leadIds=list(audience))
    stack.processes["sms"].stop()
    crashing = stack.start("sms", FAULT_CRASH_AFTER_DISPATCH="true")
    try:
        await stack.wait_started("sms")
        status, _, _ = await api.post(f"/api/campaigns/{campaign['id']}/start", {})
        assert status in (200, 202)  # 202: it died before its answer left
        await eventually(lambda: not crashing.running, 15, what="the dispatcher to die after its commit")
        assert await texts(sandbox, audience.values()) == Counter()  # nothing was published
    finally:
        await restarted(stack)
    done = await when(api, campaign["id"], completed, "the campaign to complete after the restart", 30)
    assert done["campaign"]["counts"]["sent"] == 5
    assert await texts(sandbox, audience.values()) == Counter(audience.values())
    assert stack.processes["sms"].logged("campaigns.published_again")
