"""CORS (issue 18, item 5) and the SDK's files at /sdk/ (item 1), on the real stack.

A second gateway of the stack (its own port, the same broker and database) lists two origins in
CORS_ALLOWED_ORIGINS; the stack's own gateway lists only the origin of the SDK's example pages
(tests/conftest.py EXAMPLE_ORIGIN), none of these. With none listed at all (the default) there is no CORS
header anywhere: tests/unit/test_cors.py."""

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path
from uuid import uuid4

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from services.gateway.routes import SDK
from tests.conftest import Api
from tests.e2e.test_documents import attach, download, unique_pdf
from tests.support.stack import ROOT, Stack, eventually, free_port

SITE = "https://app.example.com"
LOCAL = "http://localhost:3000"
PROBLEM = "application/problem+json"
EXPOSED = {"idempotent-replayed", "location", "retry-after"}
ALLOW_HEADERS = {"authorization", "content-type", "idempotency-key"}


@pytest.fixture(scope="module")
async def cors_url(stack: Stack) -> AsyncIterator[str]:
    port = free_port()
    gateway = stack.start(
        "gateway-cors",
        "services.gateway",
        GATEWAY_PORT=str(port),
        CORS_ALLOWED_ORIGINS=f"{SITE.upper()}:443, {LOCAL}",  # kept as a browser writes them
    )
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(url + "/readyz") as answer:
                        return answer.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(ready, 30, 0.1, "the gateway with CORS_ALLOWED_ORIGINS to be ready")
        yield url
    finally:
        gateway.stop()


@pytest.fixture
def cors_api(api: Api, cors_url: str) -> Api:
    return Api(api.http, cors_url, api.token)


async def ask(
    http: aiohttp.ClientSession, method: str, url: str, **headers: str
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    async with http.request(method, url, headers=headers) as answer:
        return answer.status, answer.headers, await answer.read()


async def preflight(
    http: aiohttp.ClientSession, url: str, origin: str, method: str = "POST"
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    return await ask(
        http,
        "OPTIONS",
        url,
        Origin=origin,
        **{"Access-Control-Request-Method": method, "Access-Control-Request-Headers": "authorization,content-type"},
    )


def words(headers: CIMultiDictProxy[str] | CIMultiDict[str], name: str) -> set[str]:
    return {w.strip().lower() for value in headers.getall(name, []) for w in value.split(",") if w.strip()}


def allowed(headers: CIMultiDictProxy[str] | CIMultiDict[str], origin: str) -> None:
    assert headers.getall("Access-Control-Allow-Origin", []) == [origin], dict(headers)
    assert words(headers, "Access-Control-Expose-Headers") == EXPOSED
    assert "origin" in words(headers, "Vary")
    assert "Access-Control-Allow-Credentials" not in headers  # bearer tokens, never cookies


def not_allowed(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> None:
    assert "Access-Control-Allow-Origin" not in headers and "Access-Control-Expose-Headers" not in headers


async def test_a_listed_origin_s_preflight_is_204_without_a_token(api: Api, cors_url: str) -> None:
    for path in ("/api/leads/update-status", "/api/leads", "/api/documents/x", "/sdk/index.js", "/api/no-such"):
        for origin in (SITE, LOCAL):
            status, headers, body = await preflight(api.http, cors_url + path, origin)
            assert (status, body) == (204, b""), (path, body)
            assert headers["Access-Control-Allow-Origin"] == origin
            assert words(headers, "Access-Control-Allow-Methods") == {"get", "head", "post", "delete"}
            assert words(headers, "Access-Control-Allow-Headers") == {
                "authorization",
                "content-type",
                "idempotency-key",
            }
            assert int(headers["Access-Control-Max-Age"]) > 0 and "origin" in words(headers, "Vary")


async def test_another_origin_s_preflight_is_a_403_problem_without_allow_origin(api: Api, cors_url: str) -> None:
    others = ("https://evil.example", "https://app.example.com.evil.example", "http://app.example.com", "null")
    for origin in (*others, "https://app.example.com:8443", "HTTPS://APP.EXAMPLE.COM", f"{SITE}/"):
        for url in (cors_url, api.url):  # and from the gateway that lists another
            status, headers, body = await preflight(api.http, url + "/api/leads", origin)
            assert (status, headers["Content-Type"].split(";")[0]) == (403, PROBLEM), (origin, body)
            assert b"CORS_ALLOWED_ORIGINS" in body
            not_allowed(headers)


async def test_answers_and_refusals_carry_the_headers_for_a_listed_origin(cors_api: Api, cors_url: str) -> None:
    lead = await cors_api.create_lead()
    answers = {
        200: await cors_api.get(f"/api/leads/{lead['id']}", headers={"Origin": SITE}),
        401: await cors_api.get("/api/leads", headers={"Origin": SITE, "Authorization": "Bearer nope"}),
        404: await cors_api.get(f"/api/leads/{uuid4()}", headers={"Origin": SITE}),
        405: await cors_api.get("/api/leads/update-status", headers={"Origin": SITE}),
        422: await cors_api.get("/api/leads?limit=0", headers={"Origin": SITE}),
    }
    for status, (got, headers, body) in answers.items():
        assert got == status, (status, body)
        allowed(CIMultiDict(headers), SITE)
        if status >= 400:
            assert headers["Content-Type"].startswith(PROBLEM)
    async with cors_api.http.get(cors_url + "/api/nothing-here", headers={"Origin": LOCAL}) as answer:
        assert answer.status in (401, 404)  # no route, but under /api/: the token is asked for first
        allowed(answer.headers, LOCAL)


async def test_a_replayed_press_says_so_to_the_page(cors_api: Api) -> None:
    key, body = str(uuid4()), {"name": "Grace Hopper", "phone": "+14155550101"}
    first = await cors_api.post("/api/leads", body, key=key, headers={"Origin": SITE})
    again = await cors_api.post("/api/leads", body, key=key, headers={"Origin": SITE})
    assert (first[0], again[0]) == (201, 201) and again[1]["Idempotent-Replayed"] == "true"
    allowed(CIMultiDict(first[1]), SITE)
    allowed(CIMultiDict(again[1]), SITE)


async def test_a_304_and_a_streamed_document_carry_the_headers(cors_api: Api) -> None:
    status, headers, _ = await cors_api.get("/api/buttons", headers={"Origin": SITE})
    assert status == 200
    status, headers, _ = await cors_api.get(
        "/api/buttons", headers={"Origin": SITE, "If-None-Match": CIMultiDict(headers)["ETag"]}
    )
    assert status == 304
    allowed(CIMultiDict(headers), SITE)
    document = await attach(cors_api, (await cors_api.create_lead())["id"], unique_pdf())
    status, streamed, _ = await download(cors_api, document["id"], Origin=SITE)  # sent by its handler
    assert status == 200
    allowed(streamed, SITE)


async def test_no_allow_origin_for_another_origin_or_none(cors_api: Api, api: Api) -> None:
    for origin in ("https://evil.example", "null", f"{SITE}/path", None):
        status, headers, _ = await cors_api.get("/api/leads", headers={"Origin": origin} if origin else {})
        assert status == 200  # a request still reaches its handler (a same-origin POST carries an Origin too)
        not_allowed(CIMultiDict(headers))
        assert "origin" in words(CIMultiDict(headers), "Vary")  # caches keep the answers apart
    status, headers, _ = await api.get("/api/leads", headers={"Origin": SITE})  # the gateway that lists another
    assert status == 200 and not [k for k in headers if k.lower().startswith("access-control-")]


async def raw(url: str, request: bytes) -> tuple[int, bytes]:
    """Bytes as sent (no client normalises the path or encodes the headers); the status and the head back."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return int(head.split(b" ", 2)[1]), head
    finally:
        writer.close()


async def test_hostile_origins_are_never_a_500_nor_allowed(cors_url: str) -> None:
    hostile = [
        b"x" * 4000,
        "https://äpp.example.com".encode(),
        b"\xff\xfe\x80",
        b"null",
        SITE.encode() + b"/api",
        SITE.encode() + b", " + SITE.encode(),
        b"https://app.example.com\x00",
        b"",
    ]
    for origin in hostile:
        for method, extra in ((b"OPTIONS", b"Access-Control-Request-Method: POST\r\n"), (b"GET", b"")):
            request = b"%s /api/buttons HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\n%sConnection: close\r\n\r\n"
            status, head = await raw(cors_url, request % (method, origin, extra))
            assert status < 500 and b"access-control-allow-origin" not in head.lower(), (origin[:40], status, head)
            if method == b"OPTIONS" and b"\x00" not in origin:  # (a NUL: the request itself is refused, 400)
                assert status == 403, (origin[:40], head)
    request = b"GET /api/buttons HTTP/1.1\r\nHost: x\r\nOrigin: https://%s.example\r\nConnection: close\r\n\r\n"
    status, _ = await raw(cors_url, request % (b"a" * 20_000))  # past aiohttp's limit on a header
    assert 400 <= status < 500


def test_a_bad_setting_stops_the_gateway_at_start_naming_it(stack: Stack) -> None:
    env = stack.env(GATEWAY_PORT=str(free_port()), CORS_ALLOWED_ORIGINS=f"{SITE},https://app.example.com/")
    done = subprocess.run(
        [sys.executable, "-m", "services.gateway"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2, done.stderr
    assert "invalid setting CORS_ALLOWED_ORIGINS" in done.stderr and "'https://app.example.com/'" in done.stderr
    assert "Traceback" not in done.stderr


def sdk_file(suffix: str) -> Path:
    found = sorted(p for p in SDK.glob(f"*{suffix}") if p.is_file())
    assert found, f"no {suffix} file in {SDK}"
    return found[0]


async def test_sdk_files_are_public_typed_and_revalidated(api: Api, cors_url: str) -> None:
    index = sdk_file(".js")
    for url in (api.url, cors_url):
        status, headers, body = await ask(api.http, "GET", f"{url}/sdk/{index.name}")  # no token
        assert (status, body) == (200, index.read_bytes())
        assert headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert headers["Cache-Control"] == "no-cache"
        etag, modified = headers["ETag"], headers["Last-Modified"]
        status, headers, body = await ask(api.http, "GET", f"{url}/sdk/{index.name}", **{"If-None-Match": etag})
        assert (status, body) == (304, b"")
        status, _, _ = await ask(api.http, "GET", f"{url}/sdk/{index.name}", **{"If-Modified-Since": modified})
        assert status == 304
        later = formatdate(index.stat().st_mtime - 3600, usegmt=True)  # older than the file: sent again
        status, _, _ = await ask(api.http, "GET", f"{url}/sdk/{index.name}", **{"If-Modified-Since": later})
        assert status == 200
        status, headers, body = await ask(api.http, "HEAD", f"{url}/sdk/{index.name}")
        assert (status, body, headers["Content-Type"]) == (200, b"", "text/javascript; charset=utf-8")
    declarations = sdk_file(".d.ts")
    status, headers, body = await ask(api.http, "GET", f"{api.url}/sdk/{declarations.name}")
    assert (status, body) == (200, declarations.read_bytes())
    assert headers["Content-Type"].startswith("application/typescript")


async def test_sdk_files_and_their_304_carry_cors_headers(api: Api, cors_url: str) -> None:
    index = sdk_file(".js")
    status, headers, _ = await ask(api.http, "GET", f"{cors_url}/sdk/{index.name}", Origin=LOCAL)
    assert status == 200
    allowed(headers, LOCAL)
    status, headers, _ = await ask(
        api.http, "GET", f"{cors_url}/sdk/{index.name}", Origin=LOCAL, **{"If-None-Match": headers["ETag"]}
    )
    assert status == 304
    allowed(headers, LOCAL)
    status, headers, _ = await ask(api.http, "GET", f"{cors_url}/sdk/no-such.js", Origin=LOCAL)
    assert status == 404 and headers["Content-Type"].startswith(PROBLEM)
    allowed(headers, LOCAL)


async def test_sdk_has_no_listing_and_no_way_out(api: Api) -> None:
    outside = ["services/gateway/app.py", "services/gateway/static/console.css"]  # a type /sdk/ serves, too
    assert all((ROOT / name).is_file() for name in outside)  # there: a 404 is a refusal, not a missing file
    paths = [b"/sdk/", b"/sdk", b"/sdk/./index.js/..", b"/sdk/%00index.js", b"/sdk/" + b"a" * 1000 + b".js"]
    for name in (n.encode() for n in outside):
        paths += [
            b"/sdk/../../../" + name,
            b"//sdk/../../../" + name,
            b"/sdk/%2e%2e/%2e%2e/%2e%2e/" + name,
            b"/sdk/%2E%2E/%2E%2E/%2E%2E/" + name,
            b"/sdk/..%2f..%2f..%2f" + name.replace(b"/", b"%2f"),
            b"/sdk/..%5c..%5c..%5c" + name.replace(b"/", b"%5c"),
            b"/sdk/%252e%252e/%252e%252e/%252e%252e/" + name,
            b"/sdk/%2f" + str(ROOT).encode().replace(b"/", b"%2f") + b"%2f" + name.replace(b"/", b"%2f"),
        ]
    for path in paths:
        status, head = await raw(api.url, b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path)
        assert status == 404, (path, head)
