"""CORS_ALLOWED_ORIGINS read and refused at start, and the CORS middleware and hook in-process (services/gateway/
cors.py) where the real stack cannot easily be made to answer so: an answer streamed by its handler, a Vary
already set, an unexpected error; and /sdk/ on folders of the test's own (missing, with a link out of it...).
The wired gateway is tested against the real stack in tests/e2e/test_cors.py."""

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.gateway import cors, errors, routes
from services.gateway.settings import GatewaySettings
from shared.settings import load

SITE = "https://app.example.com"
ALLOWED = frozenset({SITE})


@pytest.mark.parametrize(
    ("entry", "origin"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("HTTPS://App.Example.COM:443", "https://app.example.com"),  # as a browser writes it
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("https://xn--exmple-cua.com", "https://xn--exmple-cua.com"),
    ],
)
def test_an_origin_is_kept_as_browsers_send_it(entry: str, origin: str) -> None:
    assert cors.origins(f" {entry} ,, http://other.test ") == {origin, "http://other.test"}


BAD = [
    "https://app.example.com/",
    "https://app.example.com/path",
    "app.example.com",
    "ftp://app.example.com",
    "*",
    "https://*.example.com",
    "null",
    "https://user@app.example.com",
    "https://app.example.com:99999",
    "https://app.example.com:0",
    "https://exämple.com",
    "https://app.example.com?x=1",
    "https://app.example.com#top",
    "https://app example.com",
]


@pytest.mark.parametrize("entry", BAD)
def test_an_entry_that_is_not_an_origin_stops_the_start_naming_it(
    entry: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("JWT_SECRET", "s" * 64)
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", f"http://localhost:3000,{entry}")
    with pytest.raises(SystemExit):
        load(GatewaySettings)
    err = capsys.readouterr().err
    assert "invalid setting CORS_ALLOWED_ORIGINS" in err and repr(entry) in err, err


def test_empty_is_same_origin_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "s" * 64)
    monkeypatch.delenv("CORS_ALLOWED_ORIGINS", raising=False)
    assert GatewaySettings().cors_origins == frozenset()
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", " , ")
    assert GatewaySettings().cors_origins == frozenset()


async def streamed(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Vary": "Accept-Encoding"})
    await response.prepare(request)  # sent before any middleware sees it (as a document's bytes are)
    await response.write(b"bytes")
    return response


async def varies_by_origin(request: web.Request) -> web.Response:
    return web.Response(text="x", headers={"Vary": "origin"})


async def broken(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


class Served:
    def __init__(self, server: TestServer):
        self.server = server

    async def get(self, path: str, origin: str | None = SITE) -> tuple[int, dict[str, str]]:
        headers = {"Origin": origin} if origin is not None else {}
        async with (
            aiohttp.ClientSession() as http,
            http.get(str(self.server.make_url(path)), headers=headers) as answer,
        ):
            await answer.read()
            return answer.status, {k: ", ".join(answer.headers.getall(k)) for k in answer.headers}


Serve = Callable[[frozenset[str]], Awaitable[Served]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[TestServer] = []

    async def start(allowed: frozenset[str]) -> Served:
        app = web.Application(middlewares=[cors.preflight(allowed), errors.problems])  # as init_app wires them
        app.on_response_prepare.append(cors.headers(allowed))
        app.router.add_get("/api/streamed", streamed)
        app.router.add_get("/api/varies", varies_by_origin)
        app.router.add_get("/api/broken", broken)
        app.router.add_get("/healthz", varies_by_origin)
        servers.append(TestServer(app))
        await servers[-1].start_server()
        return Served(servers[-1])

    yield start
    for server in servers:
        await server.close()


async def test_an_answer_sent_by_its_handler_carries_the_headers_and_keeps_its_vary(serve: Serve) -> None:
    status, headers = await (await serve(ALLOWED)).get("/api/streamed")
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == SITE
    assert headers["Vary"] == "Accept-Encoding, Origin"


async def test_a_vary_on_origin_is_not_said_twice(serve: Serve) -> None:
    _, headers = await (await serve(ALLOWED)).get("/api/varies")
    assert headers["Vary"] == "origin" and headers["Access-Control-Allow-Origin"] == SITE


async def test_an_unexpected_error_is_a_500_problem_the_page_can_read(serve: Serve) -> None:
    status, headers = await (await serve(ALLOWED)).get("/api/broken")
    assert status == 500 and headers["Content-Type"].startswith("application/problem+json")
    assert headers["Access-Control-Allow-Origin"] == SITE


async def test_outside_api_and_sdk_and_with_none_listed_there_is_no_cors_header(serve: Serve) -> None:
    _, headers = await (await serve(ALLOWED)).get("/healthz")
    assert not [k for k in headers if k.lower().startswith("access-control-")]
    none_listed = await serve(frozenset())
    for path in ("/api/streamed", "/api/broken"):
        _, headers = await none_listed.get(path)
        assert not [k for k in headers if k.lower().startswith("access-control-")], headers
        assert "Origin" not in headers.get("Vary", "")


async def sdk_server(folder: Path, monkeypatch: pytest.MonkeyPatch) -> TestServer:
    monkeypatch.setattr(routes, "SDK", folder)
    app = web.Application(middlewares=[errors.problems])
    routes.setup_routes(app)
    server = TestServer(app)
    await server.start_server()  # the folder is looked for per request: its absence does not stop the start
    return server


async def status_of(server: TestServer, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(str(server.make_url(path))) as answer:
        return answer.status, await answer.text()


async def test_sdk_without_its_folder_starts_and_is_404(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = await sdk_server(tmp_path / "missing", monkeypatch)
    try:
        assert (await status_of(server, "/sdk/index.js"))[0] == 404
    finally:
        await server.close()


async def test_sdk_serves_only_its_own_files_of_known_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "src"
    (folder / "generated").mkdir(parents=True)
    (folder / "index.js").write_text("export const a = 1;\n")
    (folder / "generated" / "table.js").write_text("export const t = 2;\n")
    (folder / ".secret.js").write_text("hidden")
    (folder / "notes.txt").write_text("not a type the SDK has")
    (tmp_path / "outside.js").write_text("outside")
    (folder / "link.js").symlink_to(tmp_path / "outside.js")
    server = await sdk_server(folder, monkeypatch)
    try:
        assert await status_of(server, "/sdk/index.js") == (200, "export const a = 1;\n")
        assert await status_of(server, "/sdk/generated/table.js") == (200, "export const t = 2;\n")
        for path in ("/sdk/.secret.js", "/sdk/notes.txt", "/sdk/link.js", "/sdk/generated", "/sdk/generated/"):
            assert (await status_of(server, path))[0] == 404, path
    finally:
        await server.close()
