"""What the console reads besides the buttons: a lead's history, the allowed moves, the development sign-in."""

from uuid import uuid4

from services.gateway.auth import decode
from shared.contracts.leads import MOVES
from tests.conftest import Api
from tests.support.stack import TEST_SECRET, Stack, free_port, wait_http


async def test_history_is_newest_first_with_who_and_which_command(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    for status, key in (("contacted", f"h1-{uuid4().hex}"), ("qualified", f"h2-{uuid4().hex}")):
        code, _, _ = await api.post("/api/leads/update-status", {"leadId": lead, "status": status}, key=key)
        assert code == 200
    await api.post("/api/leads/update-status", {"leadIds": [lead], "status": "lost"})
    status, _, body = await api.get(f"/api/leads/{lead}/history")
    assert status == 200
    moves = [(h["from"], h["to"], h["by"]) for h in body["history"]]
    assert moves == [
        ("qualified", "lost", "agent-1"),
        ("contacted", "qualified", "agent-1"),
        ("new", "contacted", "agent-1"),
    ]
    assert set(body["history"][0]) == {"from", "to", "at", "by", "command_id"}
    assert all(h["command_id"] for h in body["history"]) and len({h["command_id"] for h in body["history"]}) == 3


async def test_history_of_a_new_lead_is_empty(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    status, _, body = await api.get(f"/api/leads/{lead}/history")
    assert (status, body) == (200, {"history": []})


async def test_history_of_another_organisation_or_of_nothing_is_404(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    await api.post("/api/leads/update-status", {"leadId": lead, "status": "contacted"})
    other = api.as_user(f"other-{uuid4().hex[:6]}")
    for path in (f"/api/leads/{lead}/history", f"/api/leads/{uuid4()}/history", "/api/leads/not-an-id/history"):
        status, _, body = await other.get(path)
        assert status == 404 and body["type"] == "/problems/not-found", (path, body)


async def test_statuses_publish_the_moves_the_service_enforces(api: Api) -> None:
    status, _, body = await api.get("/api/leads/statuses")
    assert status == 200
    assert body["statuses"] == ["new", "contacted", "qualified", "proposal", "won", "lost"]
    assert body["moves"] == {str(s): [str(t) for t in targets] for s, targets in MOVES.items()}
    assert "new" not in body["moves"]["qualified"] and "won" not in body["moves"]["lost"]
    status, _, doc = await api.get("/api/openapi.json")
    assert doc["components"]["schemas"]["LeadStatus"]["x-moves"] == body["moves"]
    # What is published is what is enforced: a move it leaves out is refused, one it lists is taken.
    lead = (await api.create_lead())["id"]
    await api.post("/api/leads/update-status", {"leadId": lead, "status": "qualified"})
    assert (await api.post("/api/leads/update-status", {"leadId": lead, "status": "new"}))[0] == 409
    assert (await api.post("/api/leads/update-status", {"leadId": lead, "status": body["moves"]["qualified"][0]}))[
        0
    ] == 200


async def test_reads_need_a_token(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    for path in ("/api/leads/statuses", f"/api/leads/{lead}/history"):
        async with api.http.get(api.url + path) as response:
            assert response.status == 401
        async with api.http.get(api.url + path, headers={"Authorization": "Bearer nope"}) as response:
            assert response.status == 401


async def test_dev_sign_in_is_not_there_unless_turned_on(api: Api) -> None:
    async with api.http.post(api.url + "/dev/token") as response:
        assert response.status == 404
    async with api.http.get(api.url + "/dev/login") as response:
        assert response.status == 404


async def test_dev_sign_in_gives_a_working_token_for_the_demo_agent(api: Api, stack: Stack) -> None:
    port, org = free_port(), f"demo-{uuid4().hex[:6]}"
    dev = stack.start(
        "gateway-dev",
        "services.gateway",
        GATEWAY_PORT=str(port),
        DEV_LOGIN="true",
        DEV_LOGIN_ORG=org,
        DEV_LOGIN_USER="demo-agent",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_http(url + "/readyz", 30, "the DEV_LOGIN gateway")
        async with api.http.get(url + "/dev/login") as response:
            assert (response.status, await response.json()) == (200, {"org": org, "user": "demo-agent"})
        async with api.http.post(url + "/dev/token") as response:
            assert response.status == 200
            body = await response.json()
        principal = decode(body["token"], TEST_SECRET)
        assert (principal.org, principal.user) == (org, "demo-agent")
        demo = Api(api.http, url, body["token"])
        lead = await demo.create_lead()
        assert (await api.as_user(org).get(f"/api/leads/{lead['id']}"))[0] == 200
    finally:
        dev.stop()
