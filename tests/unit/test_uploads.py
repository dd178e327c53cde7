"""The gateway's reading of an upload (services/gateway/uploads.py) on a small app of its own: what a
multipart body may hold, and that a refused one leaves nothing in the blob store."""

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer

from services.gateway import errors, uploads
from services.gateway.keys import BLOBS, SETTINGS
from shared.blobs import DirectoryStore

LIMIT = 1000


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    async def view(request: web.Request) -> web.Response:
        return web.json_response(await uploads.read(request, "file"))

    app = web.Application(middlewares=[errors.problems])
    app[SETTINGS] = SimpleNamespace(document_max_bytes=LIMIT)  # type: ignore[assignment]
    app[BLOBS] = DirectoryStore(tmp_path / "blobs")
    app.router.add_post("/upload", view)
    async with TestClient(TestServer(app)) as running:
        yield running


def form(*parts: tuple[str, bytes | str, str | None]) -> FormData:
    data = FormData()
    for name, value, filename in parts:
        data.add_field(name, value, filename=filename)
    return data


async def post(client: TestClient, data: object, **headers: str) -> tuple[int, dict]:
    async with client.post("/upload", data=data, headers=headers) as response:
        return response.status, await response.json()


async def test_the_file_is_stored_and_its_claim_check_returned(client: TestClient, tmp_path: Path) -> None:
    status, body = await post(client, form(("file", b"hello, world\n", "C:\\fakepath\\hello.txt")))
    sha = hashlib.sha256(b"hello, world\n").hexdigest()
    assert (status, body) == (200, {"sha256": sha, "size": 13, "contentType": "text/plain", "filename": "hello.txt"})
    assert (tmp_path / "blobs" / sha[:2] / sha).read_bytes() == b"hello, world\n"


@pytest.mark.parametrize(
    ("data", "headers", "status", "problem"),
    [
        (b"x", {"Content-Type": "multipart/form-data"}, 400, "/problems/malformed-multipart"),  # no boundary
        (b"garbage", {"Content-Type": "multipart/form-data; boundary=abc"}, 400, "/problems/malformed-multipart"),
        (
            b'--abc\r\nContent-Disposition: form-data; name="\x1e\x16"\r\n\r\nx\r\n--abc--\r\n',  # a control character
            {"Content-Type": "multipart/form-data; boundary=abc"},
            400,
            "/problems/malformed-multipart",
        ),
        (b'{"file": "x"}', {"Content-Type": "application/json"}, 415, "/problems/unsupported-media-type"),
        (form(("file", b"a", "a.txt"), ("file", b"b", "b.txt")), {}, 422, "/problems/validation"),  # two files
        (form(("note", "hi", None), ("file", b"a", "a.txt")), {}, 422, "/problems/validation"),  # another part
        (form(("attachment", b"a", "a.txt")), {}, 422, "/problems/validation"),  # not the part named `file`
        (form(("file", b"a", "")), {}, 422, "/problems/validation"),  # no file name
        (form(("file", b"x" * (LIMIT + 1), "big.txt")), {}, 413, "/problems/too-large"),
    ],
)
async def test_what_an_upload_may_not_be(
    client: TestClient, tmp_path: Path, data: object, headers: dict[str, str], status: int, problem: str
) -> None:
    got, body = await post(client, data, **headers)
    assert (got, body["type"]) == (status, problem), body
    assert not list((tmp_path / "blobs").glob("*/*.part"))  # nothing half-written left behind


async def test_a_file_at_the_limit_or_empty_is_taken(client: TestClient) -> None:
    assert (await post(client, form(("file", b"x" * LIMIT, "full.txt"))))[1]["size"] == LIMIT
    assert (await post(client, form(("file", b"", "empty.txt"))))[1]["size"] == 0
