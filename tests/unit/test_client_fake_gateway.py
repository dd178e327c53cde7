"""The Python client against a scripted stand-in for the gateway: the retry table (a 500 retried with
the same key; a final problem or a 409 sent once), and which scopes' queued presses a flush sends."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import crm_client
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from crm_client import problems
from crm_client.offline import Store
from crm_client.scope import Scope, scope_of

from services.gateway.auth import issue
from tests.support.stack import TEST_SECRET

LEAD = {"lead": {"id": "l1", "status": "won"}}


@dataclass
class FakeGateway:
    """Answers each request with the next of `script` (status, body, headers), then 200 LEAD; records
    (method, path, Idempotency-Key, token, body) of each."""

    script: list[tuple[int, dict, dict[str, str]]] = field(default_factory=list)
    seen: list[tuple[str, str, str | None, str, bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        key = request.headers.get("Idempotency-Key")
        self.seen.append((request.method, request.path, key, token, await request.read()))
        status, body, headers = self.script.pop(0) if self.script else (200, LEAD, {})
        return web.json_response(body, status=status, headers=headers)

    def keys(self) -> list[str | None]:
        return [key for _, _, key, _, _ in self.seen]


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[FakeGateway, str]]:
    fake = FakeGateway()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield fake, str(server.make_url("")).rstrip("/")


def quick(url: str, token: str = "token", attempts: int = 6, offline_db: str | None = None) -> crm_client.Client:
    """Waits of milliseconds: the stand-in answers at once."""
    return crm_client.Client(
        url, token, offline_db, attempts=attempts, backoff=0.01, backoff_max=0.02, replay_in_background=False
    )


def problem(status: int, type_: str = "about:blank") -> dict:
    return {"type": type_, "title": "x", "status": status, "detail": "scripted"}


async def test_a_500_is_retried_with_the_same_key_then_succeeds(gateway: tuple[FakeGateway, str]) -> None:
    fake, url = gateway
    fake.script = [(500, problem(500), {}), (500, problem(500), {"Retry-After": "0"})]
    async with quick(url) as client:
        assert await client.update_lead_status("l1", "won") == LEAD
    keys = fake.keys()
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1


async def test_a_500_that_stays_is_unreachable_and_queued_offline(gateway: tuple[FakeGateway, str], tmp_path) -> None:
    fake, url = gateway
    fake.script = [(500, problem(500), {})] * 3
    async with quick(url, attempts=3) as client:
        with pytest.raises(crm_client.Unreachable) as away:
            await client.update_lead_status("l1", "won")
    assert away.value.status == 500 and len(fake.seen) == 3
    fake.script = [(500, problem(500), {})] * 3
    async with quick(url, attempts=3, offline_db=str(tmp_path / "q.db")) as client:
        queued = await client.update_lead_status("l1", "won")
        assert isinstance(queued, crm_client.Queued) and [q.key for q in client.pending()] == [queued.key]


@pytest.mark.parametrize(
    ("status", "type_", "headers", "raised"),
    [
        (503, "/problems/command-parked", {}, problems.CommandParked),  # a 503 that is final
        (500, "/problems/content-missing", {}, problems.ContentMissing),
        (409, "/problems/forbidden-status-change", {"Retry-After": "1"}, problems.ForbiddenMove),
        (409, "about:blank", {"Retry-After": "1"}, crm_client.Conflict),  # no "in flight" 409: a refusal
    ],
)
async def test_a_final_answer_is_sent_once(
    gateway: tuple[FakeGateway, str], status: int, type_: str, headers: dict[str, str], raised: type[Exception]
) -> None:
    fake, url = gateway
    fake.script = [(status, problem(status, type_), headers)]
    async with quick(url) as client:
        with pytest.raises(raised):
            await client.update_lead_status("l1", "won")
    assert len(fake.seen) == 1


async def test_a_flush_sends_this_scope_and_with_all_scopes_the_same_identity_never_another(
    gateway: tuple[FakeGateway, str], tmp_path
) -> None:
    fake, url = gateway
    db, token = str(tmp_path / "q.db"), issue(TEST_SECRET, "org-a", "u1")
    me = scope_of(url, token)
    rows = [
        (me, "k-mine"),
        (Scope("http://localhost:1", "org-a", "u1"), "k-mine-elsewhere"),  # the same identity, another URL
        (Scope(me.deployment, "org-a", "u2"), "k-another-user"),
        (Scope(me.deployment, "org-b", "u1"), "k-another-org"),
        (Scope(me.deployment, None, None), "k-unknown"),
    ]
    for scope, key in rows:
        writer = Store(db, scope)
        writer.add(key, "update_lead_status", f"/api/{key}", json.dumps({"key": key}))
        writer.close()
    async with quick(url, token, offline_db=db) as client:
        everything = client.pending(all_scopes=True)
        assert [(q.key, q.scope) for q in everything] == [(key, scope) for scope, key in rows]
        assert [q.key for q in everything if client.replays(q)] == ["k-mine"]
        assert [q.key for q in everything if client.replays(q, all_scopes=True)] == ["k-mine", "k-mine-elsewhere"]

        assert [o.key for o in await client.flush()] == ["k-mine"]
        settled = await client.flush(all_scopes=True)
        assert [(o.key, o.state, o.scope) for o in settled] == [("k-mine-elsewhere", "done", rows[1][0])]
        assert [q.key for q in client.pending(all_scopes=True)] == ["k-another-user", "k-another-org", "k-unknown"]
    # each with its own key, path and body, and this token
    assert fake.seen == [
        ("POST", f"/api/{key}", key, token, json.dumps({"key": key}).encode()) for key in ("k-mine", "k-mine-elsewhere")
    ]
