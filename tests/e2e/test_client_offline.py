"""The client's offline queue against the real stack: presses made while the gateway is away are
kept (across a SIGKILL of the client), replayed in order with their own keys, applied once; found
through another URL of the same deployment (the token's issuer), or with `flush --all-scopes` by the
same organisation and user, never by another."""

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import crm_client
import pytest
from crm_client.offline import SCHEMA

from services.gateway.auth import issue
from tests.conftest import Api
from tests.e2e.test_client import Proxy, crm, fast, status_history
from tests.support.infra import Infra
from tests.support.stack import ROOT, TEST_SECRET, Stack, eventually

ISSUER = "https://auth.crm.test"  # the test stack checks no issuer: a token with one is as good

# A client process: presses three status changes and creates a lead while the gateway is away,
# prints each Queued result, then waits to be killed.
PRESS_THEN_WAIT = """
import asyncio, json, sys
import crm_client

async def main(url, token, db, lead):
    async with crm_client.Client(url, token, offline_db=db, attempts=2, backoff=0.05) as client:
        for status in ("contacted", "qualified", "proposal"):
            print(json.dumps((await client.update_lead_status(lead, status)).to_json()), flush=True)
        print(json.dumps((await client.create_lead("Offline Ada", "+14155550177")).to_json()), flush=True)
        await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:]))
"""

# A client process that only opens a client and lets its background replay empty the queue.
OPEN_UNTIL_EMPTY = """
import asyncio, json, sys
import crm_client

async def main(url, token, db):
    async with crm_client.Client(url, token, offline_db=db, replay_interval=0.2) as client:
        while client.pending():
            await asyncio.sleep(0.1)
        for outcome in client.outcomes():
            print(json.dumps(outcome.to_json()), flush=True)

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.fixture
async def proxy(stack: Stack) -> AsyncIterator[Proxy]:
    running = await Proxy(stack.url).start()
    yield running
    await running.stop()


async def python(script: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, *args, cwd=ROOT, env=dict(os.environ), stdout=asyncio.subprocess.PIPE
    )


async def test_presses_queued_offline_survive_a_sigkill_and_are_applied_once_in_order(
    api: Api, proxy: Proxy, infra: Infra, tmp_path: Path
) -> None:
    lead = (await api.create_lead())["id"]
    db = str(tmp_path / "queue.db")
    await proxy.go_down()
    client = await python(PRESS_THEN_WAIT, proxy.url, api.token, db, lead)
    try:
        assert client.stdout is not None
        lines = [json.loads(await asyncio.wait_for(client.stdout.readline(), 120)) for _ in range(4)]
    finally:
        client.send_signal(signal.SIGKILL)
        await client.wait()
    assert client.returncode == -signal.SIGKILL
    assert [q["queued"]["operation"] for q in lines] == ["update_lead_status"] * 3 + ["create_lead"]

    async with fast(proxy.url, api.token, offline_db=db, replay_in_background=False) as survivor:
        assert [q.key for q in survivor.pending()] == [q["queued"]["key"] for q in lines]
    assert await status_history(infra, lead) == []

    await proxy.up()
    replayer = await python(OPEN_UNTIL_EMPTY, proxy.url, api.token, db)
    out, _ = await asyncio.wait_for(replayer.communicate(), 120)
    assert replayer.returncode == 0
    outcomes = [json.loads(line)["outcome"] for line in out.decode().splitlines()]
    assert [(o["key"], o["state"]) for o in outcomes] == [(q["queued"]["key"], "done") for q in lines]
    assert await status_history(infra, lead) == [
        ("new", "contacted"),
        ("contacted", "qualified"),
        ("qualified", "proposal"),
    ]
    _, _, listed = await api.get("/api/leads?limit=200")
    assert [x["name"] for x in listed["leads"]].count("Offline Ada") == 1
    # each press reached the gateway with the key it was made with
    assert [key for _, _, key in proxy.posts()] == [q["queued"]["key"] for q in lines]


async def test_a_queued_press_that_had_got_through_has_one_effect(
    api: Api, proxy: Proxy, infra: Infra, tmp_path: Path
) -> None:
    lead = (await api.create_lead())["id"]
    proxy.lose_answers = 1000  # the gateway does the work, the client never hears of it
    async with fast(
        proxy.url, api.token, offline_db=str(tmp_path / "q.db"), attempts=2, replay_in_background=False
    ) as client:
        queued = await client.update_lead_status(lead, "won")
        assert isinstance(queued, crm_client.Queued)
        assert await status_history(infra, lead) == [("new", "won")]  # it had got through
        proxy.lose_answers = 0
        (outcome,) = await client.flush()
    assert (outcome.key, outcome.state, outcome.status) == (queued.key, "done", 200)
    assert outcome.answer["lead"]["status"] == "won"
    assert await status_history(infra, lead) == [("new", "won")]
    assert {key for _, _, key in proxy.posts()} == {queued.key}


async def test_a_replay_the_domain_refuses_is_recorded_failed_and_the_next_still_go(
    api: Api, proxy: Proxy, infra: Infra, tmp_path: Path
) -> None:
    first, second = (await api.create_lead())["id"], (await api.create_lead())["id"]
    reported: list[crm_client.Outcome] = []
    await proxy.go_down()
    async with fast(
        proxy.url,
        api.token,
        offline_db=str(tmp_path / "q.db"),
        attempts=2,
        replay_interval=0.2,
        on_outcome=reported.append,
    ) as client:
        presses = [
            await client.update_lead_status(first, "lost"),
            await client.update_lead_status(first, "won"),  # lost → won is not a move: 409 on replay
            await client.update_lead_status(second, "contacted"),
        ]
        assert all(isinstance(p, crm_client.Queued) for p in presses)
        assert [p.key for p in client.pending()] == [p.key for p in presses]
        await proxy.up()
        await eventually(lambda: not client.pending(), 60, 0.1, "the background replay to empty the queue")
        outcomes = client.outcomes()
    assert [(o.key, o.state, o.status) for o in outcomes] == [
        (presses[0].key, "done", 200),
        (presses[1].key, "failed", 409),
        (presses[2].key, "done", 200),
    ]
    assert outcomes[1].answer["status"] == 409 and "lost" in outcomes[1].answer["detail"]
    assert reported == outcomes
    assert await status_history(infra, first) == [("new", "lost")]
    assert await status_history(infra, second) == [("new", "contacted")]
    assert len(proxy.posts()) == 3  # the refusal was not retried


async def test_a_new_press_waits_behind_the_queue(api: Api, proxy: Proxy, infra: Infra, tmp_path: Path) -> None:
    lead = (await api.create_lead())["id"]
    await proxy.go_down()
    async with fast(
        proxy.url, api.token, offline_db=str(tmp_path / "q.db"), attempts=2, replay_in_background=False
    ) as client:
        queued = await client.update_lead_status(lead, "contacted")
        assert isinstance(queued, crm_client.Queued)
        await proxy.up()
        answer = await client.update_lead_status(lead, "qualified")  # the queued one goes first
        assert answer["lead"]["status"] == "qualified"
        assert [o.key for o in client.outcomes()] == [queued.key]
    assert await status_history(infra, lead) == [("new", "contacted"), ("contacted", "qualified")]


async def test_another_identity_does_not_replay_my_presses(api: Api, proxy: Proxy, tmp_path: Path) -> None:
    db = str(tmp_path / "q.db")
    await proxy.go_down()
    async with fast(proxy.url, api.token, offline_db=db, attempts=2, replay_in_background=False) as mine:
        assert isinstance(await mine.update_lead_status(str(uuid4()), "won"), crm_client.Queued)
    other = api.as_user(f"other-{uuid4().hex[:6]}")
    async with fast(proxy.url, other.token, offline_db=db, replay_in_background=False) as theirs:
        assert theirs.pending() == []


# Scopes: (deployment, org, user); the deployment is the token's issuer, else the URL's origin ---------
def via_localhost(url: str) -> str:
    """The same gateway by another name: another origin."""
    return url.replace("://127.0.0.1:", "://localhost:")


async def queue_through(url: str, token: str, db: str, lead: str, status: str) -> dict:
    """`crm lead status` while the gateway is away: exit 3, the press queued."""
    env = {"CRM_TOKEN": token, "CRM_OFFLINE_DB": db, "CRM_ATTEMPTS": "2"}
    code, (queued,), _ = await crm("--url", url, "lead", "status", lead, status, env=env)
    assert code == 3, queued
    return queued["queued"]


async def test_a_press_queued_through_localhost_is_replayed_through_127_0_0_1_with_an_issuer(
    api: Api, org: str, proxy: Proxy, infra: Infra, tmp_path: Path
) -> None:
    lead = (await api.create_lead())["id"]
    token, db = issue(TEST_SECRET, org, "agent-1", issuer=ISSUER), str(tmp_path / "q.db")
    env = {"CRM_TOKEN": token, "CRM_OFFLINE_DB": db}
    await proxy.go_down()
    queued = await queue_through(via_localhost(proxy.url), token, db, lead, "won")
    assert queued["scope"] == {"deployment": ISSUER, "org": org, "user": "agent-1"}
    await proxy.up()
    code, (listed,), _ = await crm("--url", proxy.url, "pending", env=env)
    assert code == 0 and listed["queued"]["key"] == queued["key"]
    assert (listed["replays"], listed["replays_with_all_scopes"]) == (True, True)
    code, (settled,), _ = await crm("--url", proxy.url, "flush", env=env)
    assert code == 0 and (settled["outcome"]["key"], settled["outcome"]["state"]) == (queued["key"], "done")
    assert [key for _, _, key in proxy.posts()] == [queued["key"]]  # through 127.0.0.1, with its own key
    assert await status_history(infra, lead) == [("new", "won")]
    assert (await crm("--url", proxy.url, "pending", env=env))[1] == []


async def test_without_an_issuer_another_origin_is_another_scope_replayed_only_with_all_scopes(
    api: Api, org: str, proxy: Proxy, infra: Infra, tmp_path: Path
) -> None:
    lead, db = (await api.create_lead())["id"], str(tmp_path / "q.db")
    env = {"CRM_TOKEN": api.token, "CRM_OFFLINE_DB": db}
    await proxy.go_down()
    queued = await queue_through(via_localhost(proxy.url), api.token, db, lead, "won")
    await proxy.up()
    code, (listed,), _ = await crm("--url", proxy.url, "pending", env=env)
    assert code == 0 and listed["queued"]["key"] == queued["key"]
    assert listed["queued"]["scope"] == {"deployment": via_localhost(proxy.url), "org": org, "user": "agent-1"}
    assert (listed["replays"], listed["replays_with_all_scopes"]) == (False, True)
    code, settled_none, _ = await crm("--url", proxy.url, "flush", env=env)
    assert (code, settled_none) == (0, [])  # not this scope: not sent
    assert proxy.posts() == []
    code, (settled,), _ = await crm("--url", proxy.url, "flush", "--all-scopes", env=env)
    assert code == 0 and (settled["outcome"]["key"], settled["outcome"]["state"]) == (queued["key"], "done")
    assert [key for _, _, key in proxy.posts()] == [queued["key"]]
    assert await status_history(infra, lead) == [("new", "won")]


async def test_flush_all_scopes_skips_another_users_presses(
    api: Api, org: str, proxy: Proxy, infra: Infra, tmp_path: Path
) -> None:
    mine, theirs = (await api.create_lead())["id"], (await api.create_lead())["id"]
    colleague, db = issue(TEST_SECRET, org, "agent-2"), str(tmp_path / "q.db")
    env = {"CRM_TOKEN": api.token, "CRM_OFFLINE_DB": db}
    await proxy.go_down()
    their_press = await queue_through(proxy.url, colleague, db, theirs, "lost")
    my_press = await queue_through(via_localhost(proxy.url), api.token, db, mine, "won")
    await proxy.up()
    code, lines, _ = await crm("--url", proxy.url, "flush", "--all-scopes", env=env)
    assert code == 0
    assert [(line["skipped"]["key"], line["skipped"]["scope"]["user"]) for line in lines if "skipped" in line] == [
        (their_press["key"], "agent-2")
    ]
    assert [line["outcome"]["key"] for line in lines if "outcome" in line] == [my_press["key"]]
    assert [key for _, _, key in proxy.posts()] == [my_press["key"]]  # theirs never sent with my token
    assert await status_history(infra, theirs) == []
    assert await status_history(infra, mine) == [("new", "won")]
    code, (left,), _ = await crm("--url", proxy.url, "pending", env=env)
    assert left["queued"]["key"] == their_press["key"]
    assert (left["replays"], left["replays_with_all_scopes"]) == (False, False)


async def test_a_press_queued_by_the_old_client_is_found_and_replayed(
    api: Api, org: str, proxy: Proxy, infra: Infra, tmp_path: Path
) -> None:
    """A file written before scopes had a deployment: the row's scope is "URL\\norg\\nuser"."""
    lead, db, key = (await api.create_lead())["id"], str(tmp_path / "old.db"), str(uuid4())
    old = sqlite3.connect(db)
    with old:
        old.executescript(SCHEMA)
        old.execute(
            "INSERT INTO presses (scope, key, operation, path, body, made_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                f"{proxy.url}\n{org}\nagent-1",
                key,
                "update_lead_status",
                "/api/leads/update-status",
                json.dumps({"leadId": lead, "status": "won"}, separators=(",", ":")),
                datetime.now(UTC).isoformat(),
            ),
        )
    old.close()
    env = {"CRM_TOKEN": api.token, "CRM_OFFLINE_DB": db}
    code, (listed,), _ = await crm("--url", proxy.url, "pending", env=env)
    assert code == 0 and listed["queued"]["key"] == key and listed["replays"] is True
    code, (settled,), _ = await crm("--url", proxy.url, "flush", env=env)
    assert code == 0 and (settled["outcome"]["key"], settled["outcome"]["state"]) == (key, "done")
    assert [k for _, _, k in proxy.posts()] == [key]
    assert await status_history(infra, lead) == [("new", "won")]
