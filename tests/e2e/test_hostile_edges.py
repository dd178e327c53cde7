"""Hostile and broken input at the HTTP edge (issue 15): a clear 4xx problem, never a 500, and a flood
of /readyz that costs the database nothing."""

import asyncio
from uuid import uuid4

import aiohttp
import asyncpg

from tests.conftest import SERVICES, Api
from tests.e2e.test_documents import attach, download, unique_pdf
from tests.integration.test_sms_faults import signed
from tests.support.infra import Infra

WEBHOOKS = ("/webhooks/twilio/status", "/webhooks/twilio/inbound")
FORM = "application/x-www-form-urlencoded"
PROBLEM = "application/problem+json"


async def post_raw(api: Api, path: str, body: bytes, content_type: str, **headers: str) -> tuple[int, str, dict]:
    async with api.http.post(api.url + path, data=body, headers={"Content-Type": content_type, **headers}) as answer:
        return answer.status, answer.content_type, await answer.json(content_type=None)


async def test_a_webhook_in_an_unknown_charset_is_400_before_its_signature_is_looked_at(api: Api) -> None:
    for path in WEBHOOKS:
        status, content_type, problem = await post_raw(
            api, path, b"MessageSid=SM1&MessageStatus=sent", f"{FORM}; charset=klingon"
        )
        assert (status, content_type) == (400, PROBLEM), problem
        assert problem["type"] == "/problems/malformed-form" and "klingon" in problem["detail"]


async def test_a_webhook_the_gateway_cannot_read_is_400(api: Api) -> None:
    unreadable = [
        (b"Body=caf\xe9", f"{FORM}; charset=utf-8"),  # a byte that is no UTF-8
        (b"Body=caf%E9", FORM),  # the same, percent-encoded
        (b"Body=\xff", f"{FORM}; charset=utf-16"),  # a known charset, but no form is written in it
        (b'{"MessageSid": "SM1"}', "application/json"),  # not a form
        (
            b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
        ),  # a form, but not the one Twilio posts
        (b"junk", "multipart/form-data"),
    ]
    for path in WEBHOOKS:
        for body, content_type in unreadable:
            status, got, problem = await post_raw(api, path, body, content_type)
            assert (status, got, problem["type"]) == (400, PROBLEM, "/problems/malformed-form"), (body, problem)


async def test_a_webhook_far_larger_than_twilio_sends_is_413(api: Api) -> None:
    status, content_type, problem = await post_raw(api, WEBHOOKS[1], b"Body=" + b"a" * 200_000, FORM)
    assert (status, content_type) == (413, PROBLEM), problem


async def test_a_readable_webhook_in_latin_1_is_still_signature_checked(api: Api) -> None:
    url = api.url + WEBHOOKS[0]
    params = {"MessageSid": f"SM{uuid4().hex}", "MessageStatus": "delivered", "Body": "café"}
    headers = signed(url, {**params, "MessageStatus": "failed"})  # signed for other fields
    status, content_type, problem = await post_raw(
        api,
        WEBHOOKS[0],
        f"MessageSid={params['MessageSid']}&MessageStatus=delivered&Body=caf\xe9".encode("latin-1"),
        f"{FORM}; charset=ISO-8859-1",
        **headers,
    )
    assert (status, content_type, problem["type"]) == (403, PROBLEM, "/problems/signature")


async def test_a_range_of_thousands_of_digits_is_416(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    document = await attach(api, lead, unique_pdf())
    digits = "9" * 5000
    status, headers, _ = await download(api, document["id"], Range=f"bytes={digits}-")
    assert status in (400, 416) and headers["Content-Type"].startswith(PROBLEM)
    for absurd in (f"bytes=0-{digits}", f"bytes=-{digits}", f"bytes={digits}-{digits}", f"bytes=0{digits}-"):
        status, headers, _ = await download(api, document["id"], Range=absurd)
        assert status in (400, 416), (absurd[:20], status)
    status, _, body = await download(api, document["id"], Range="bytes=0-9")  # a sane one still works
    assert status == 206 and len(body) == 10


def upload_body(part_headers: str) -> bytes:
    return (
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
        + part_headers.encode()
        + b"Content-Type: application/pdf\r\n\r\n"
        + unique_pdf()
        + b"\r\n--b0undary--\r\n"
    )


async def test_an_upload_part_in_an_unknown_encoding_is_refused_not_a_500(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    for headers in (
        "Content-Transfer-Encoding: klingon\r\n",
        "Content-Encoding: klingon\r\n",
        "Content-Encoding: gzip\r\n",
    ):
        status, _, problem = await api.post(
            f"/api/leads/{lead}/documents",
            upload_body(headers),
            headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
        )
        assert status in (400, 415), (headers, problem)
        assert problem["status"] == status and problem["type"] == "/problems/unsupported-encoding"
    for headers in ("", "Content-Transfer-Encoding: binary\r\n"):  # what browsers and clients send
        status, _, problem = await api.post(
            f"/api/leads/{lead}/documents",
            upload_body(headers),
            headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
        )
        assert status == 201, problem


async def test_a_readyz_burst_opens_no_database_connection(api: Api, infra: Infra) -> None:
    async with api.http.get(api.url + "/readyz") as warm_up:
        assert warm_up.status == 200
    watcher = await asyncpg.connect(infra.database_url)
    try:

        async def gateway_sessions() -> set[int]:
            """Sessions of the test database but the services' own pools (theirs may grow with their work)."""
            return {
                row["pid"]
                for row in await watcher.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name <> ALL($1::text[])",
                    list(SERVICES),
                )
            }

        before = await gateway_sessions()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=500)) as http:

            async def ready() -> int:
                async with http.get(api.url + "/readyz") as response:
                    body = await response.json()
                    assert {"status", "checks", "services", "took_ms"} <= set(body)
                    return response.status

            burst = asyncio.gather(*(ready() for _ in range(500)))
            seen = set(before)
            while not burst.done():  # a session opened and closed during the burst is seen too
                seen |= await gateway_sessions()
            statuses = await burst
        seen |= await gateway_sessions()
    finally:
        await watcher.close()
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert seen == before, f"{len(seen - before)} database sessions opened during the burst"
