"""The leads buttons through HTTP, against the running gateway and leads service."""

import time
from uuid import uuid4

import jwt
import pytest

from tests.conftest import Api
from tests.integration.test_delivery import history
from tests.support.infra import Infra
from tests.support.stack import TEST_SECRET


async def test_create_get_and_list_leads(api: Api) -> None:
    status, _, body = await api.post("/api/leads", {"name": " Ada ", "phone": "(415) 555-0100", "email": "a@b.co"})
    assert status == 201
    lead = body["lead"]
    assert (lead["name"], lead["phone"], lead["email"], lead["status"]) == ("Ada", "+14155550100", "a@b.co", "new")
    assert set(lead) == {"id", "name", "phone", "email", "status", "status_changed_at", "created_at"}
    status, _, got = await api.get(f"/api/leads/{lead['id']}")
    assert (status, got) == (200, {"lead": lead})


async def test_listing_pages_in_a_stable_order(api: Api) -> None:
    created = [(await api.create_lead(f"Lead {i}"))["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        status, _, page = await api.get("/api/leads?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200 and len(page["leads"]) <= 2
        seen += [lead["id"] for lead in page["leads"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created
    status, _, contacted = await api.get("/api/leads?status=contacted")
    assert status == 200 and contacted["leads"] == []


async def test_single_status_change_writes_history(api: Api, infra: Infra) -> None:
    lead = await api.create_lead()
    status, _, body = await api.post("/api/leads/update-status", {"leadId": lead["id"], "status": "qualified"})
    assert status == 200
    assert body["lead"]["id"] == lead["id"] and body["lead"]["status"] == "qualified"
    assert set(body["lead"]) == {"id", "status", "status_changed_at"}
    (row,) = await history(infra, lead["id"])
    assert (row["from_status"], row["to_status"], row["changed_by"]) == ("new", "qualified", "agent-1")
    assert row["command_id"]


async def test_moving_to_the_same_status_changes_nothing(api: Api, infra: Infra) -> None:
    lead = await api.create_lead()
    status, _, body = await api.post("/api/leads/update-status", {"leadId": lead["id"], "status": "new"})
    assert status == 200 and body["lead"]["status_changed_at"] == lead["status_changed_at"]
    assert await history(infra, lead["id"]) == []


async def test_bulk_happy_path_counts_a_repeated_id_once(api: Api, infra: Infra) -> None:
    ids = [(await api.create_lead(f"Bulk {i}"))["id"] for i in range(3)]
    status, _, body = await api.post("/api/leads/update-status", {"leadIds": [*ids, ids[0]], "status": "contacted"})
    assert status == 200
    assert body["updated"] == 3 and body["failed"] == []
    assert [lead["id"] for lead in body["leads"]] == ids
    assert {lead["status"] for lead in body["leads"]} == {"contacted"}
    for lead_id in ids:
        assert len(await history(infra, lead_id)) == 1


async def test_bulk_refusal_names_every_failing_lead_and_changes_nothing(api: Api, infra: Infra) -> None:
    ok = (await api.create_lead())["id"]
    won = (await api.create_lead())["id"]
    await api.post("/api/leads/update-status", {"leadId": won, "status": "won"})
    unknown = str(uuid4())
    status, headers, body = await api.post(
        "/api/leads/update-status", {"leadIds": [ok, won, unknown], "status": "contacted"}
    )
    assert status == 409
    assert headers["Content-Type"].startswith("application/problem+json")
    assert body["updated"] == 0 and body["leads"] == []
    assert body["failed"] == [
        {"leadId": won, "reason": "cannot move from won to contacted"},
        {"leadId": unknown, "reason": "not_found"},
    ]
    assert await history(infra, ok) == []


async def test_another_organisations_lead_looks_like_no_lead(api: Api) -> None:
    theirs = await api.as_user(f"other-{uuid4().hex[:6]}").create_lead()
    missing = str(uuid4())
    for lead_id in (theirs["id"], missing):
        status, _, body = await api.get(f"/api/leads/{lead_id}")
        assert status == 404 and body["status"] == 404
        status, _, body = await api.post("/api/leads/update-status", {"leadId": lead_id, "status": "won"})
        assert status == 404, body
    status, _, body = await api.post("/api/leads/update-status", {"leadIds": [theirs["id"]], "status": "won"})
    assert status == 409 and body["failed"] == [{"leadId": theirs["id"], "reason": "not_found"}]
    _, _, page = await api.get("/api/leads")
    assert theirs["id"] not in [lead["id"] for lead in page["leads"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "A", "phone": "not a phone"}, "phone"),
        ({"name": "", "phone": "+14155550100"}, "name"),
        ({"phone": "+14155550100"}, "name"),
        ({"name": "A", "phone": "+14155550100", "email": "nope"}, "email"),
    ],
)
async def test_invalid_lead_is_422_naming_the_field(api: Api, body: dict, field: str) -> None:
    status, headers, problem = await api.post("/api/leads", body)
    assert status == 422
    assert headers["Content-Type"].startswith("application/problem+json")
    assert {"type", "title", "status", "detail"} <= set(problem)
    assert field in [e["field"] for e in problem["errors"]]


async def test_status_conflicts_are_409_naming_the_current_status(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    await api.post("/api/leads/update-status", {"leadId": lead, "status": "won"})
    status, _, body = await api.post("/api/leads/update-status", {"leadId": lead, "status": "contacted"})
    assert status == 409 and "won" in body["detail"]
    other = (await api.create_lead())["id"]
    status, _, body = await api.post(
        "/api/leads/update-status", {"leadId": other, "status": "qualified", "expectedStatus": "contacted"}
    )
    assert status == 409 and "new" in body["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"leadId": "x", "status": "married"},
        {"leadIds": [], "status": "won"},
        {"leadIds": [str(uuid4()) for _ in range(1001)], "status": "won"},
        {"leadIds": ["a"], "leadId": "a", "status": "won"},
        {"status": "won"},
    ],
)
async def test_bad_status_requests_are_422(api: Api, body: dict) -> None:
    status, _, problem = await api.post("/api/leads/update-status", body)
    assert status == 422, problem
    assert problem["status"] == 422


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x", "status=nope", "cursor=garbage"])
async def test_bad_list_queries_are_422(api: Api, query: str) -> None:
    status, _, problem = await api.get(f"/api/leads?{query}")
    assert status == 422, problem


@pytest.mark.parametrize("raw", [b"{", b"[1,2]", b"\xff\xfe"])
async def test_malformed_json_is_400(api: Api, raw: bytes) -> None:
    status, _, problem = await api.post("/api/leads", raw)
    assert status == 400 and problem["type"] == "/problems/malformed-json"


def token(**claims: object) -> str:
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer not-a-jwt",
        "Bearer " + jwt.encode({"sub": "u", "org": "o", "exp": int(time.time()) + 60}, "w" * 40, algorithm="HS256"),
        "Bearer " + token(sub="u", org="o", exp=int(time.time()) - 3600),
        "Bearer " + token(sub="u", exp=int(time.time()) + 60),
        "Bearer " + token(org="o", exp=int(time.time()) + 60),
        "Bearer " + token(sub="u", org="o"),
    ],
)
async def test_every_kind_of_bad_token_is_401(api: Api, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with api.http.get(api.url + "/api/leads", headers=headers) as response:
        assert response.status == 401
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert response.headers["WWW-Authenticate"] == "Bearer"
    async with api.http.post(api.url + "/api/leads/update-status", headers=headers, json={}) as response:
        assert response.status == 401


async def test_unknown_paths_and_methods_are_problems(api: Api) -> None:
    status, headers, body = await api.get("/api/nothing-here")
    assert status == 404 and headers["Content-Type"].startswith("application/problem+json")
    status, _, body = await api.request("DELETE", "/api/leads")
    assert status == 405 and body["status"] == 405


async def test_health_readiness_and_openapi(api: Api) -> None:
    async with api.http.get(api.url + "/healthz") as response:
        assert response.status == 200
    async with api.http.get(api.url + "/readyz") as response:
        assert response.status == 200
        assert (await response.json())["checks"] == {"broker": True, "database": True, "event_log": True}
    async with api.http.get(api.url + "/api/openapi.json") as response:
        doc = await response.json()
    assert doc["openapi"].startswith("3.1")
    assert {"/api/leads", "/api/leads/{leadId}", "/api/leads/update-status"} <= set(doc["paths"])
    assert {"CreateLead", "UpdateLeadStatus", "BulkUpdateLeadStatus", "Problem"} <= set(doc["components"]["schemas"])


async def test_odd_input_never_gets_a_500(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    assert (await api.get("/api/leads/" + "x" * 65))[0] == 404
    assert (await api.post("/api/leads", b"[" * 100_000))[0] == 400
    status, _, problem = await api.post("/api/leads", {"name": "A\u0000B", "phone": "+14155550100"})
    assert status == 422, problem  # a value the database cannot hold is bad input, not a transient failure
    async with api.http.get(
        api.url + "/api/leads", headers={"Authorization": b"Bearer \xc3\xa9\xff".decode("latin-1")}
    ) as r:
        assert r.status == 401
    assert (await api.get("/api/leads?status=&limit=&cursor="))[0] == 200  # empty means absent
    forged = "WyI5OTk5LTEyLTMxVDIzOjU5OjU5LTA1OjAwIiwgIjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJd"
    assert (await api.get(f"/api/leads?cursor={forged}"))[0] == 422
    assert (await api.get(f"/api/leads/{lead.upper()}"))[0] == 200


async def test_a_lead_id_in_any_spelling_is_the_same_lead(api: Api, infra: Infra) -> None:
    lead = (await api.create_lead())["id"]
    status, _, body = await api.post("/api/leads/update-status", {"leadId": lead.upper(), "status": "contacted"})
    assert status == 200 and body["lead"]["id"] == lead
    status, _, body = await api.post(
        "/api/leads/update-status", {"leadIds": [lead, lead.replace("-", "")], "status": "qualified"}
    )
    assert status == 200 and body["updated"] == 1 and [x["id"] for x in body["leads"]] == [lead]
    assert len(await history(infra, lead)) == 2


async def test_moving_to_the_same_status_emits_no_event(api: Api, probe, org: str) -> None:  # type: ignore[no-untyped-def]
    lead = (await api.create_lead())["id"]
    await api.post("/api/leads/update-status", {"leadId": lead, "status": "new"})
    await api.post("/api/leads/update-status", {"leadIds": [lead], "status": "new"})
    await probe.barrier(org)
    assert probe.events_of(org, "leads.status_changed") == []
