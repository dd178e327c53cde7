"""GET /api/buttons on the running gateway: public, cacheable (ETag, max-age, 304), the rows' table."""

import re

import aiohttp

from services.gateway.catalog import SCHEMAS, table
from shared.buttons import BUTTONS, READS
from shared.problems import PROBLEMS
from tests.conftest import Api


async def test_it_needs_no_token_and_is_the_rows_table(http: aiohttp.ClientSession, api: Api) -> None:
    async with http.get(api.url + "/api/buttons") as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "application/json"
        body = await response.json()
    assert body == table().model_dump(mode="json")
    assert {b.name for b in BUTTONS} == set(body["buttons"]) and {r.name for r in READS} <= set(body["reads"])
    types = {type_ for _, _, type_ in PROBLEMS.values()}
    assert set(body["problems"]) == types
    for name, button in body["buttons"].items():
        assert set(button["refusals"]) <= types and button["refusals"], name
        assert button["fields"] == re.findall(r"{(\w+)}", button["path"])
    async with http.get(api.url + "/api/openapi.json") as response:
        schemas = (await response.json())["components"]["schemas"]
    assert all(b["body"].removeprefix(SCHEMAS) in schemas for b in body["buttons"].values())
    assert "/api/buttons" in (await api.get("/api/openapi.json"))[2]["paths"]  # type: ignore[index]


async def test_it_is_cacheable_and_answers_304_to_its_etag(http: aiohttp.ClientSession, api: Api) -> None:
    async with http.get(api.url + "/api/buttons") as response:
        etag, cache_control = response.headers["ETag"], response.headers["Cache-Control"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag) and re.search(r"max-age=\d+", cache_control)
    for given in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        async with http.get(api.url + "/api/buttons", headers={"If-None-Match": given}) as response:
            assert response.status == 304, given
            assert response.headers["ETag"] == etag and await response.read() == b""
    for given in ('"other"', 'W/"other"', "not a tag"):
        async with http.get(api.url + "/api/buttons", headers={"If-None-Match": given}) as response:
            assert response.status == 200, given
            assert response.headers["ETag"] == etag
    async with http.head(api.url + "/api/buttons") as response:
        assert response.status == 200 and response.headers["ETag"] == etag


async def test_hostile_requests_of_the_table_are_answered_never_a_500(http: aiohttp.ClientSession, api: Api) -> None:
    url = api.url + "/api/buttons"
    many = ", ".join(f'"tag{i}"' for i in range(2000))
    # A quoted "*" is a tag that names nothing of ours; broken, empty, or thousands of tags: none matches.
    for given in ('"*"', 'W/"*"', '"unterminated', "", ",,,", many[:8000], "\u00e9t\u00e9".encode().decode("latin-1")):
        async with http.get(url, headers={"If-None-Match": given}) as response:
            assert response.status == 200, given[:40]
            assert (await response.json())["buttons"]
    async with http.get(url, headers={"If-None-Match": "x" * 9000}) as response:  # past aiohttp's header limit
        assert response.status == 400
    async with http.get(url + "?limit=-1&x=" + "y" * 2000, headers={"Authorization": "Bearer not-a-jwt"}) as response:
        assert response.status == 200  # public: a token, good or bad, and a query string change nothing
    async with http.post(url, json={}) as response:
        assert response.status == 405 and "GET" in response.headers["Allow"]
        assert response.content_type == "application/problem+json"


async def test_a_press_built_from_the_table_is_the_button(api: Api) -> None:
    """What a client does with the table: the path from the button's name and fields, the rest the body."""
    _, _, body = await api.get("/api/buttons")
    rows = body["buttons"]  # type: ignore[index]
    lead = (await api.create_lead("From The Table"))["id"]

    async def press(name: str, **fields: object) -> tuple[int, dict]:
        row = rows[name]
        path = re.sub(r"{(\w+)}", lambda m: str(fields.pop(m.group(1))), row["path"])
        status, _, answer = await api.request(row["method"], path, fields)
        return status, answer  # type: ignore[return-value]

    assert (await press("update_lead_status", leadId=lead, status="won"))[0] == 200
    status, refused = await press("update_lead_status", leadId=lead, status="new")
    assert status == 409 and refused["type"] in rows["update_lead_status"]["refusals"]
    assert body["problems"][refused["type"]]["name"] == "ForbiddenMove"  # type: ignore[index]
    status, gone = await press("start_campaign", campaignId="00000000-0000-4000-8000-000000000000")
    assert status == 404 and gone["type"] in rows["start_campaign"]["refusals"]
