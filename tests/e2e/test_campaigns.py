"""SMS campaigns through HTTP, the broker and the Twilio sandbox: one SMS per lead per campaign, whatever happens.

The stack sends campaigns at SMS_CAMPAIGN_RATE_PER_SECOND=25 (tests/conftest.py STACK_ENV). Every test
waits on conditions with deadlines; "exactly once" is counted in the sandbox, per phone number.
"""

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

from services.sms.campaign_domain import send_id
from tests.conftest import Api
from tests.e2e.test_sms import fresh_phone
from tests.support.broker import Probe
from tests.support.sandbox import Sandbox
from tests.support.stack import eventually

BODY = "Hi {{first_name}}, spring offer inside!"


async def final(api: Api, answer: tuple[int, dict, object]) -> tuple[int, dict]:
    """The answer; a 202 (the service did not answer within the gateway's wait) followed to its final answer."""
    status, headers, body = answer
    if status != 202:
        return status, body  # type: ignore[return-value]

    async def known() -> tuple[int, dict] | None:
        got, _, final_body = await api.get(headers["Location"])
        return None if got == 202 else (got, final_body)  # type: ignore[return-value]

    return await eventually(known, 30, 0.1, f"the answer at {headers['Location']}")


async def template(api: Api, body: str = BODY) -> str:
    status, answer = await final(
        api, await api.post("/api/sms/templates", {"name": f"t-{uuid4().hex[:8]}", "body": body})
    )
    assert status == 201, answer
    return answer["template"]["id"]


async def leads(api: Api, count: int, **extra: str) -> dict[str, str]:
    """`count` fresh leads: lead id -> phone."""
    made = {}
    for i in range(count):
        phone = fresh_phone()
        status, _, body = await api.post("/api/leads", {"name": f"Lead{i} Test", "phone": phone, **extra})
        assert status == 201, body
        made[body["lead"]["id"]] = phone
    return made


# The leads' numbers are +1415 (Los Angeles): the default window (08:00-21:00 there) is shut for 11 hours of
# every UTC day, so a test that wants its campaign sent now opens the window all day; quiet hours pass theirs.
ALL_DAY = {"sendFrom": "00:00", "sendUntil": "23:59:59.999999"}


async def create(api: Api, template_id: str, **audience: object) -> dict:
    status, body = await final(
        api, await api.post("/api/campaigns", {"name": "Spring", "templateId": template_id, **ALL_DAY, **audience})
    )
    assert status == 201, body
    return body["campaign"]


async def press(api: Api, campaign_id: str, action: str, expected: int = 200, **kw: object) -> dict:
    answer = await api.post(f"/api/campaigns/{campaign_id}/{action}", {}, **kw)  # type: ignore[arg-type]
    status, body = await final(api, answer)
    assert status == expected, body
    return body


async def detail(api: Api, campaign_id: str) -> dict:
    status, _, body = await api.get(f"/api/campaigns/{campaign_id}?limit=1000")
    assert status == 200, body
    return body


async def when(api: Api, campaign_id: str, check: Callable[[dict], bool], what: str, timeout: float = 20) -> dict:
    async def look() -> dict | None:
        status, _, body = await api.get(f"/api/campaigns/{campaign_id}?limit=1000")
        assert status in (200, 503), body  # 503: the service is restarting (or its database away): ask again
        return body if status == 200 and check(body["campaign"]) else None

    return await eventually(look, timeout, 0.1, what)


async def texts(sandbox: Sandbox, phones: object) -> Counter[str]:
    """Messages the sandbox accepted, per phone, for these phones only."""
    wanted = set(phones)  # type: ignore[call-overload]
    return Counter(m["to"] for m in (await sandbox.received())["messages"] if m["to"] in wanted)


def completed(c: dict) -> bool:
    return c["status"] == "completed"


async def run_to_the_end(api: Api, lead_ids: object, what: str = "the campaign to complete") -> dict:
    """A campaign of these leads, created, started and followed until it completed: its detail."""
    campaign = await create(api, await template(api), leadIds=list(lead_ids))  # type: ignore[call-overload]
    await press(api, campaign["id"], "start")
    return await when(api, campaign["id"], completed, what)


async def test_a_campaign_texts_every_listed_lead_exactly_once(
    api: Api, sandbox: Sandbox, probe: Probe, org: str
) -> None:
    audience = await leads(api, 5)
    created = await create(api, await template(api), leadIds=[*audience, next(iter(audience))])  # one repeated
    assert (created["status"], created["counts"]["total"], created["started_at"]) == ("draft", 0, None)
    assert created["audience"] == {"leadIds": list(audience)}
    started = (await press(api, created["id"], "start"))["campaign"]
    assert started["status"] == "running" and started["counts"]["total"] == 5
    done = await when(api, created["id"], completed, "the campaign to complete")
    assert done["campaign"]["counts"] | {"total": 5} == {
        "total": 5,
        "waiting": 0,
        "sending": 0,
        "sent": 5,
        "skipped": 0,
        "failed": 0,
    }
    assert done["campaign"]["finished_at"] and {t["state"] for t in done["targets"]} == {"sent"}
    assert all(t["sms_id"] for t in done["targets"])
    sent = await texts(sandbox, audience.values())
    assert sent == Counter(audience.values())  # every lead exactly once
    bodies = {m["body"] for m in (await sandbox.received())["messages"] if m["to"] in audience.values()}
    assert bodies == {f"Hi Lead{i}, spring offer inside!" for i in range(5)}
    await probe.barrier(org)
    kinds = Counter(e["type"] for e in probe.events_of(org) if e["type"].startswith("campaigns."))
    assert (kinds["campaigns.created"], kinds["campaigns.started"], kinds["campaigns.completed"]) == (1, 1, 1)
    assert len(probe.events_of(org, "sms.sent")) == 5
    (last,) = probe.events_of(org, "campaigns.completed")
    assert last["data"]["counts"] == done["campaign"]["counts"]


async def test_a_targets_send_published_again_or_forged_sends_nothing_more(
    api: Api, sandbox: Sandbox, probe: Probe, org: str
) -> None:
    audience = await leads(api, 2)
    campaign = (await run_to_the_end(api, audience))["campaign"]
    lead = next(iter(audience))
    body = {"campaignId": campaign["id"], "leadId": lead}
    again = await probe.send("sms.send_campaign_sms", body, org=org, message_id=send_id(campaign["id"], lead))
    forged = await probe.send("sms.send_campaign_sms", body, org=org, message_id=str(uuid4()))
    (replayed,), (refused,) = await probe.reply(again), await probe.reply(forged)
    assert replayed.status == 200 and replayed.headers["x-replayed"] == "true"  # the inbox: its first answer
    assert refused.status == 422  # not the target's own message id: it could send a second SMS
    assert await texts(sandbox, audience.values()) == Counter(audience.values())
    (target,) = [t for t in (await detail(api, campaign["id"]))["targets"] if t["lead_id"] == lead]
    assert target["state"] == "sent"


async def test_progress_is_published_at_most_twice_a_second(api: Api, sandbox: Sandbox, probe: Probe, org: str) -> None:
    await run_to_the_end(api, await leads(api, 50))
    await probe.barrier(org)
    progress = [e["data"] for e in probe.events_of(org, "campaigns.progress")]
    assert len(progress) >= 2, progress  # 50 sends at 25 a second take about two seconds
    times = [datetime.fromisoformat(p["at"]) for p in progress]
    assert all(b - a >= timedelta(seconds=0.5) for a, b in itertools.pairwise(times)), times
    sent = [p["counts"]["sent"] for p in progress]
    assert sent == sorted(sent) and all(p["counts"]["total"] == 50 for p in progress)


async def test_per_lead_outcomes_are_paged_and_campaigns_listed(api: Api, sandbox: Sandbox) -> None:
    audience = await leads(api, 5)
    campaign = await create(api, await template(api), leadIds=list(audience))
    await press(api, campaign["id"], "start")
    seen, after = [], ""
    for _ in range(5):
        query = "?limit=2" + (f"&after={after}" if after else "")
        status, _, page = await api.get(f"/api/campaigns/{campaign['id']}{query}")
        assert status == 200 and len(page["targets"]) <= 2, page
        seen += [t["lead_id"] for t in page["targets"]]
        after = page["next_after"]
        if not after:
            break
    assert seen == sorted(audience) and len(set(seen)) == 5
    assert (await api.get(f"/api/campaigns/{campaign['id']}?after=nope"))[0] == 422
    status, _, listed = await api.get("/api/campaigns")
    assert status == 200 and [c["id"] for c in listed["campaigns"]] == [campaign["id"]]
    await when(api, campaign["id"], completed, "the campaign to complete")


async def test_the_campaign_list_is_paged_newest_first(api: Api) -> None:
    made = [(await create(api, await template(api), leadIds=list(await leads(api, 1))))["id"] for _ in range(3)]
    status, _, first = await api.get("/api/campaigns?limit=2")
    assert status == 200 and [c["id"] for c in first["campaigns"]] == made[:0:-1] and first["next_after"] == made[1]
    status, _, rest = await api.get(f"/api/campaigns?limit=2&after={first['next_after']}")
    assert status == 200 and [c["id"] for c in rest["campaigns"]] == [made[0]] and rest["next_after"] is None
    stranger = api.as_user(f"org-{uuid4().hex[:8]}")
    assert (await stranger.get("/api/campaigns"))[2] == {"campaigns": [], "next_after": None}
    for who, after in ((api, "nope"), (api, str(uuid4())), (stranger, made[0])):  # another organisation's: unknown
        status, _, problem = await who.get(f"/api/campaigns?after={after}")
        assert status == 422 and problem["errors"][0]["field"] == "after", problem
    assert (await api.get("/api/campaigns?limit=201"))[0] == 422


async def test_a_status_audience_is_resolved_once_at_start(api: Api, sandbox: Sandbox) -> None:
    qualified, other = await leads(api, 3), await leads(api, 1)
    status, _, _ = await api.post("/api/leads/update-status", {"leadIds": list(qualified), "status": "qualified"})
    assert status == 200
    campaign = await create(api, await template(api), status="qualified")
    assert campaign["audience"] == {"status": "qualified"}
    late_joiner = await leads(api, 1)
    await press(api, campaign["id"], "start")
    status, _, _ = await api.post("/api/leads/update-status", {"leadIds": list(late_joiner), "status": "qualified"})
    assert status == 200  # moved into the status after the start: not in the audience
    done = await when(api, campaign["id"], completed, "the campaign to complete")
    assert {t["lead_id"] for t in done["targets"]} == set(qualified)
    assert await texts(sandbox, [*qualified.values(), *other.values(), *late_joiner.values()]) == Counter(
        qualified.values()
    )


async def test_an_opted_out_lead_is_skipped_and_reported(api: Api, sandbox: Sandbox, probe: Probe, org: str) -> None:
    audience = await leads(api, 2)
    stopped, texted = list(audience)
    await eventually(lambda: known_to_sms(api, stopped), 10, what="the SMS projection to know the lead")
    assert await sandbox.inbound(audience[stopped], "STOP") == 200
    await eventually(lambda: probe.events_of(org, "sms.opt_out_changed"), 10, what="the opt-out to be recorded")
    done = await run_to_the_end(api, audience)
    targets = {t["lead_id"]: t for t in done["targets"]}
    assert (targets[stopped]["state"], targets[stopped]["reason"]) == ("skipped", "opted_out")
    assert targets[texted]["state"] == "sent"
    assert (done["campaign"]["counts"]["skipped"], done["campaign"]["counts"]["sent"]) == (1, 1)
    assert await texts(sandbox, audience.values()) == Counter([audience[texted]])


async def known_to_sms(api: Api, lead: str) -> bool:
    return (await api.get(f"/api/leads/{lead}/sms-history"))[0] == 200


async def test_pause_stops_sending_and_resume_finishes(api: Api, sandbox: Sandbox) -> None:
    audience = await leads(api, 30)
    campaign = await create(api, await template(api), leadIds=list(audience))
    await press(api, campaign["id"], "start")
    paused = (await press(api, campaign["id"], "pause"))["campaign"]
    assert paused["status"] == "paused"
    assert (await press(api, campaign["id"], "pause"))["campaign"]["status"] == "paused"  # again: no change
    held = await when(api, campaign["id"], lambda c: c["counts"]["sending"] == 0, "in-flight sends to land")
    held_counts = held["campaign"]["counts"]
    assert held_counts["waiting"] > 0, held_counts
    # A witness: another campaign of the organisation runs to its end, so the dispatcher went round many times.
    await run_to_the_end(api, await leads(api, 3), "the witness campaign to complete")
    still = await detail(api, campaign["id"])
    assert still["campaign"]["counts"] == held_counts and still["campaign"]["status"] == "paused"
    assert sum((await texts(sandbox, audience.values())).values()) == held_counts["sent"]
    resumed = (await press(api, campaign["id"], "resume"))["campaign"]
    assert resumed["status"] == "running"
    await when(api, campaign["id"], completed, "the resumed campaign to complete")
    assert await texts(sandbox, audience.values()) == Counter(audience.values())


async def test_a_second_start_and_a_replayed_start_change_nothing(
    api: Api, sandbox: Sandbox, probe: Probe, org: str
) -> None:
    audience = await leads(api, 3)
    campaign = await create(api, await template(api), leadIds=list(audience))
    key = f"start-{uuid4().hex}"
    first = await api.post(f"/api/campaigns/{campaign['id']}/start", {}, key=key)
    again = await api.post(f"/api/campaigns/{campaign['id']}/start", {}, key=key)
    assert first[0] == again[0] == 200 and first[2] == again[2]
    assert again[1].get("Idempotent-Replayed") == "true"
    answers = await asyncio.gather(*(press(api, campaign["id"], "start") for _ in range(3)))  # new keys
    assert {(a["campaign"]["status"], a["campaign"]["counts"]["total"]) for a in answers} <= {
        ("running", 3),
        ("completed", 3),
    }
    await when(api, campaign["id"], completed, "the campaign to complete")
    assert await texts(sandbox, audience.values()) == Counter(audience.values())
    problem = await press(api, campaign["id"], "start", 409)
    assert problem["type"] == "/problems/campaign-closed"
    await probe.barrier(org)
    assert len(probe.events_of(org, "campaigns.started")) == 1


async def test_cancel_sends_nothing_more(api: Api, sandbox: Sandbox) -> None:
    audience = await leads(api, 30)
    campaign = await create(api, await template(api), leadIds=list(audience))
    await press(api, campaign["id"], "start")
    cancelled = (await press(api, campaign["id"], "cancel"))["campaign"]
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    done = await when(api, campaign["id"], lambda c: c["counts"]["sending"] == 0, "in-flight sends to land")
    counts = done["campaign"]["counts"]
    assert counts["waiting"] == 0 and counts["skipped"] > 0 and counts["sent"] + counts["skipped"] == 30, counts
    assert {t["reason"] for t in done["targets"] if t["state"] == "skipped"} == {"cancelled"}
    sent = await texts(sandbox, audience.values())
    assert sum(sent.values()) == counts["sent"] and set(sent.values()) <= {1}
    for action in ("start", "pause", "resume"):
        assert (await press(api, campaign["id"], action, 409))["type"] == "/problems/campaign-closed"
    assert (await press(api, campaign["id"], "cancel"))["campaign"]["status"] == "cancelled"  # again: no change


def opening(now: datetime, zone: str, hour: int) -> datetime:
    """The next hour:00 in `zone` after `now` (what a target deferred by quiet hours waits for)."""
    local = now.astimezone(ZoneInfo(zone))
    candidate = datetime.combine(local.date(), time(hour), tzinfo=ZoneInfo(zone))
    return (candidate if candidate > local else candidate + timedelta(days=1)).astimezone(UTC)


async def test_quiet_hours_defer_a_send_to_the_window_in_the_leads_local_time(api: Api, sandbox: Sandbox) -> None:
    tokyo = await leads(api, 1, timeZone="Asia/Tokyo")  # its own zone
    status, _, got = await api.get(f"/api/leads/{next(iter(tokyo))}")
    assert status == 200 and got["lead"]["timeZone"] == "Asia/Tokyo"
    status, _, problem = await api.post("/api/leads", {"name": "Zone", "phone": fresh_phone(), "timeZone": "Mars/Base"})
    assert status == 422 and problem["errors"][0]["field"] == "timeZone", problem
    san_francisco = await leads(api, 1)  # +1415: its number's zone, America/Los_Angeles
    now = datetime.now(UTC)
    hour = (now.hour + 12) % 24  # 3 hours from Tokyo's local hour, ~19 from Los Angeles': closed now in both
    campaign = await create(
        api,
        await template(api),
        leadIds=[*tokyo, *san_francisco],
        sendFrom=f"{hour:02d}:00",
        sendUntil=f"{hour:02d}:30",
    )
    started = (await press(api, campaign["id"], "start"))["campaign"]
    assert started["counts"]["waiting"] == 2
    targets = {t["lead_id"]: t for t in (await detail(api, campaign["id"]))["targets"]}
    expected = {
        **{i: opening(now, "Asia/Tokyo", hour) for i in tokyo},
        **{i: opening(now, "America/Los_Angeles", hour) for i in san_francisco},
    }
    for lead_id, at in expected.items():
        assert targets[lead_id]["state"] == "waiting"
        assert datetime.fromisoformat(targets[lead_id]["next_at"]) == at, (lead_id, targets[lead_id], at)
    # The dispatcher goes round (a witness campaign of the same organisation completes); the deferred ones wait.
    await run_to_the_end(api, await leads(api, 1), "the witness campaign to complete")
    still = await detail(api, campaign["id"])
    assert still["campaign"]["status"] == "running" and still["campaign"]["counts"]["waiting"] == 2
    assert await texts(sandbox, [*tokyo.values(), *san_francisco.values()]) == Counter()
    await press(api, campaign["id"], "cancel")


async def test_a_provider_outage_pauses_sending_without_failing_the_campaign(api: Api, sandbox: Sandbox) -> None:
    audience = await leads(api, 6)
    campaign = await create(api, await template(api), leadIds=list(audience))
    await sandbox.behave(mode="error", status=503)  # until told otherwise
    await press(api, campaign["id"], "start")
    await eventually(lambda: breaker_is(api, "open"), 15, what="the breaker to open")
    during = (await detail(api, campaign["id"]))["campaign"]
    assert during["status"] == "running" and during["counts"]["failed"] == 0 and during["counts"]["sent"] == 0
    await sandbox.behave(mode="ok")
    done = await when(api, campaign["id"], completed, "the campaign to finish once the provider is back", 40)
    assert done["campaign"]["counts"]["sent"] == 6 and done["campaign"]["counts"]["failed"] == 0
    assert await texts(sandbox, audience.values()) == Counter(audience.values())


async def breaker_is(api: Api, state: str) -> bool:
    async with api.http.get(api.url + "/readyz") as response:
        return (await response.json())["services"]["sms"].get("breaker") == state


async def test_refusals(api: Api, sandbox: Sandbox) -> None:
    template_id = await template(api)
    audience = await leads(api, 1)
    lead = next(iter(audience))
    stranger = api.as_user(f"other-{uuid4().hex[:6]}")
    theirs = await create(stranger, await template(stranger), leadIds=list(await leads(stranger, 1)))
    for campaign_id in (theirs["id"], str(uuid4()), "not-a-uuid"):
        assert (await api.get(f"/api/campaigns/{campaign_id}"))[0] == 404
        for action in ("start", "pause", "resume", "cancel"):
            assert (await api.post(f"/api/campaigns/{campaign_id}/{action}", {}))[0] == 404
    status, _, theirs_now = await stranger.get(f"/api/campaigns/{theirs['id']}")
    assert status == 200 and theirs_now["campaign"]["status"] == "draft"  # nothing the others did changed it
    base = {"name": "Spring", "templateId": template_id}
    for audience_ in (
        {},
        {"leadIds": [lead], "status": "new"},
        {"leadIds": []},
        {"status": "nope"},
        {"leadIds": [lead], "sendFrom": "21:00", "sendUntil": "08:00"},
    ):
        assert (await api.post("/api/campaigns", {**base, **audience_}))[0] == 422, audience_
    foreign = next(iter(await leads(stranger, 1)))
    status, _, problem = await api.post("/api/campaigns", {**base, "leadIds": [lead, foreign, "nope"]})
    assert status == 422 and {e["field"] for e in problem["errors"]} == {"leadIds.1", "leadIds.2"}
    assert (await api.post("/api/campaigns", {**base, "templateId": str(uuid4()), "leadIds": [lead]}))[0] == 404
    draft = await create(api, template_id, leadIds=[lead])
    for action in ("pause", "resume"):
        assert (await press(api, draft["id"], action, 409))["type"] == "/problems/campaign-not-started"


async def test_a_replayed_create_creates_once(api: Api) -> None:
    audience = await leads(api, 1)
    body = {"name": "Once", "templateId": await template(api), "leadIds": list(audience)}
    first = await api.post("/api/campaigns", body, key="create-campaign-1")
    again = await api.post("/api/campaigns", body, key="create-campaign-1")
    assert first[0] == again[0] == 201 and first[2] == again[2] and again[1]["Idempotent-Replayed"] == "true"
    assert (await api.post("/api/campaigns", {**body, "name": "Other"}, key="create-campaign-1"))[0] == 422
    status, _, listed = await api.get("/api/campaigns")
    assert status == 200 and len(listed["campaigns"]) == 1
