"""Documents through HTTP: attach (multipart, claim check), list, download (ETag, Range), delete;
organisation isolation; the blob collector; the Python client and `crm document attach`."""

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote
from uuid import uuid4

import aio_pika
import aiohttp
import crm_client
import pytest
from crm_client import problems
from multidict import CIMultiDict

from tests.conftest import Api
from tests.e2e.test_client import Proxy, crm, fast
from tests.support.broker import Probe
from tests.support.stack import Stack, eventually

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 200 + b"%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
LIMIT = 10 * 1024 * 1024  # DOCUMENT_MAX_BYTES' default, which the test stack keeps


def unique_pdf() -> bytes:
    """Bytes no other test uploads: a blob of its own."""
    return PDF + f"% {uuid4()}\n".encode()


async def attach(
    api: Api,
    lead: str,
    data: bytes,
    filename: str = "proposal.pdf",
    content_type: str | None = "application/pdf",
    **kw: object,
) -> dict:
    status, _, body = await api.upload(f"/api/leads/{lead}/documents", data, filename, content_type, **kw)
    assert status == 201, body
    return body["document"]  # type: ignore[index]


async def download(api: Api, document_id: str, **headers: str) -> tuple[int, CIMultiDict[str], bytes]:
    async with api.http.get(
        f"{api.url}/api/documents/{document_id}/content", headers={"Authorization": f"Bearer {api.token}", **headers}
    ) as response:
        return response.status, response.headers.copy(), await response.read()


def blob_path(stack: Stack, sha256: str) -> Path:
    return Path(stack.base_env["BLOB_DIR"]) / sha256[:2] / sha256


def age(path: Path, hours: float = 1) -> None:
    """Make a blob look as old as the collector's grace period and more."""
    then = (datetime.now(UTC) - timedelta(hours=hours)).timestamp()
    os.utime(path, (then, then))


async def test_attach_list_and_download(api: Api, probe: Probe, org: str) -> None:
    lead, data = (await api.create_lead())["id"], unique_pdf()
    document = await attach(api, lead, data, "Proposal für Ada.pdf")
    assert (document["lead_id"], document["filename"], document["content_type"]) == (
        lead,
        "Proposal für Ada.pdf",
        "application/pdf",
    )
    assert (document["size"], document["sha256"], document["created_by"]) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
        "agent-1",
    )
    assert (await api.get(f"/api/leads/{lead}/documents"))[::2] == (200, {"documents": [document]})
    assert (await api.get(f"/api/documents/{document['id']}"))[::2] == (200, {"document": document})
    status, headers, body = await download(api, document["id"])
    assert (status, body) == (200, data)
    assert headers["ETag"] == f'"{document["sha256"]}"' and headers["Content-Length"] == str(len(data))
    assert headers["Content-Type"] == "application/pdf" and headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Disposition"] == (
        f"attachment; filename=\"Proposal f_r Ada.pdf\"; filename*=UTF-8''{quote('Proposal für Ada.pdf')}"
    )
    [event] = await eventually(lambda: probe.events_of(org, "documents.attached"), 10, what="documents.attached")
    assert event["data"] == {
        "documentId": document["id"],
        "leadId": lead,
        "filename": "Proposal für Ada.pdf",
        "contentType": "application/pdf",
        "size": len(data),
        "sha256": document["sha256"],
        "by": "agent-1",
    }


async def test_a_type_is_told_from_the_bytes_when_none_is_declared(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    png = await attach(api, lead, PNG, "picture", content_type=None)  # sent as application/octet-stream
    text = await attach(api, lead, "Grüße, Ada\n".encode(), "notes.csv", content_type=None)
    assert (png["content_type"], text["content_type"]) == ("image/png", "text/csv")


async def test_ranges_and_conditional_requests(api: Api) -> None:
    lead, data = (await api.create_lead())["id"], unique_pdf()
    document = await attach(api, lead, data)
    etag, size = f'"{document["sha256"]}"', len(data)
    status, headers, body = await download(api, document["id"], Range="bytes=0-9")
    assert (status, body, headers["Content-Range"]) == (206, data[:10], f"bytes 0-9/{size}")
    assert headers["Content-Length"] == "10" and headers["ETag"] == etag
    status, headers, body = await download(api, document["id"], Range="bytes=-5")
    assert (status, body, headers["Content-Range"]) == (206, data[-5:], f"bytes {size - 5}-{size - 1}/{size}")
    status, headers, body = await download(api, document["id"], Range=f"bytes={size}-")
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
    assert json.loads(body)["type"] == "/problems/range-not-satisfiable"
    status, headers, body = await download(api, document["id"], Range="bytes=0-9", **{"If-Range": '"stale"'})
    assert (status, body) == (200, data)  # the bytes the client holds are not these: the whole of them
    status, headers, body = await download(api, document["id"], **{"If-None-Match": etag})
    assert (status, body, headers["ETag"]) == (304, b"", etag)
    for other in ('"something-else"', '"*"', '"unterminated'):  # a quoted "*" is a tag, not "any"
        status, _, body = await download(api, document["id"], **{"If-None-Match": other})
        assert (status, body) == (200, data), other
    status, _, body = await download(api, document["id"], **{"If-None-Match": "*"})
    assert (status, body) == (304, b"")


async def test_a_retried_upload_is_one_document(api: Api, probe: Probe, org: str) -> None:
    lead, data, key = (await api.create_lead())["id"], unique_pdf(), f"upload-{uuid4()}"
    first = await api.upload(f"/api/leads/{lead}/documents", data, "a.pdf", "application/pdf", key=key)
    again = await api.upload(f"/api/leads/{lead}/documents", data, "a.pdf", "application/pdf", key=key)
    assert first[0] == again[0] == 201 and first[2] == again[2]
    assert again[1].get("Idempotent-Replayed") == "true"
    assert len((await api.get(f"/api/leads/{lead}/documents"))[2]["documents"]) == 1  # type: ignore[index]
    await probe.barrier(org)
    assert len(probe.events_of(org, "documents.attached", lead)) == 1


async def test_the_same_bytes_twice_on_one_lead_are_one_document(api: Api, probe: Probe, org: str) -> None:
    lead, other, data = (await api.create_lead())["id"], (await api.create_lead("Bob"))["id"], unique_pdf()
    first = await attach(api, lead, data, "a.pdf", key=f"k1-{uuid4()}")
    second = await attach(api, lead, data, "same bytes, other name.pdf", key=f"k2-{uuid4()}")
    assert second == first
    elsewhere = await attach(api, other, data, "a.pdf")  # another lead: its own document (one blob for both)
    assert elsewhere["id"] != first["id"] and elsewhere["sha256"] == first["sha256"]
    await probe.barrier(org)
    assert len(probe.events_of(org, "documents.attached", lead)) == 1


async def test_a_declared_type_the_bytes_contradict_is_refused(api: Api) -> None:
    lead = (await api.create_lead())["id"]
    status, _, problem = await api.upload(f"/api/leads/{lead}/documents", PNG, "invoice.pdf", "application/pdf")
    assert status == 415 and problem["type"] == "/problems/content-type-mismatch"  # type: ignore[index]
    assert (problem["declared"], problem["detected"]) == ("application/pdf", "image/png")  # type: ignore[index]
    status, _, problem = await api.post(f"/api/leads/{lead}/documents", {"file": "not multipart"})
    assert status == 415 and problem["type"] == "/problems/unsupported-media-type"  # type: ignore[index]
    status, _, problem = await api.upload(f"/api/leads/{lead}/documents", PDF, "", "application/pdf")
    assert status == 422  # no file name
    assert (await api.get(f"/api/leads/{lead}/documents"))[2] == {"documents": []}


async def big(total: int, chunk: int = 1024 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(chunk, total - sent)
        yield b"\x00" * piece
        sent += piece


async def test_over_the_limit_is_413_and_nothing_is_kept(api: Api, stack: Stack) -> None:
    lead = (await api.create_lead())["id"]
    data = os.urandom(LIMIT + 1)
    status, _, problem = await api.upload(f"/api/leads/{lead}/documents", data, "big.bin")
    assert status == 413 and problem["maxBytes"] == LIMIT  # type: ignore[index]
    streamed = aiohttp.MultipartWriter("form-data")  # no Content-Length: refused while it is read
    streamed.append(big(LIMIT + 1)).set_content_disposition("form-data", name="file", filename="big.bin")
    status, _, problem = await api.upload(f"/api/leads/{lead}/documents", streamed)
    assert status == 413 and problem["type"] == "/problems/too-large"  # type: ignore[index]
    for refused in (data, b"\x00" * (LIMIT + 1)):
        assert not blob_path(stack, hashlib.sha256(refused).hexdigest()).exists()
    assert not list((Path(stack.base_env["BLOB_DIR"]) / "tmp").glob("*.part"))
    at_limit = await attach(api, lead, data[:LIMIT], "exactly.bin", content_type=None)
    assert at_limit["size"] == LIMIT


async def test_another_organisation_gets_404_on_every_path(api: Api) -> None:
    stranger = api.as_user(f"other-{uuid4().hex[:6]}")
    their_lead = (await stranger.create_lead())["id"]
    theirs = await attach(stranger, their_lead, unique_pdf())
    mine = (await api.create_lead())["id"]
    answers = []
    for document in (theirs["id"], str(uuid4())):  # theirs answers exactly like one that does not exist
        got = [
            await api.get(f"/api/documents/{document}"),
            await api.post(f"/api/documents/{document}/delete", {}),
            await api.request("DELETE", f"/api/documents/{document}"),
        ]
        status, _, raw = await download(api, document)
        got.append((status, {}, json.loads(raw)))
        assert all(status == 404 for status, _, _ in got), got
        answers.append(json.dumps([body for _, _, body in got]).replace(document, "ID"))
    assert answers[0] == answers[1] and "/problems/not-found" in answers[0]
    for lead in (their_lead, str(uuid4())):
        status, _, body = await api.upload(f"/api/leads/{lead}/documents", PDF, "a.pdf", "application/pdf")
        assert status == 404 and f"lead {lead}" in body["detail"]  # type: ignore[index]
        assert (await api.get(f"/api/leads/{lead}/documents"))[0] == 404
    assert (await api.get(f"/api/leads/{mine}/documents"))[2] == {"documents": []}
    assert (await stranger.get(f"/api/documents/{theirs['id']}"))[2] == {"document": theirs}  # untouched
    assert (await download(stranger, theirs["id"]))[0] == 200


async def test_delete_then_download_is_404(api: Api, probe: Probe, org: str) -> None:
    lead = (await api.create_lead())["id"]
    document = await attach(api, lead, unique_pdf())
    status, _, body = await api.request("DELETE", f"/api/documents/{document['id']}")
    assert (status, body) == (200, {"document": document})
    assert (await api.get(f"/api/documents/{document['id']}"))[0] == 404
    assert (await download(api, document["id"]))[0] == 404
    assert (await api.get(f"/api/leads/{lead}/documents"))[2] == {"documents": []}
    status, _, body = await api.post(f"/api/documents/{document['id']}/delete", {})  # again: unchanged
    assert (status, body) == (200, {"document": document})
    await probe.barrier(org)
    [deleted] = probe.events_of(org, "documents.deleted", lead)
    assert deleted["data"] == {"documentId": document["id"], "leadId": lead, "by": "agent-1"}
    again = await attach(api, lead, unique_pdf())  # bytes deleted from a lead may be attached anew
    assert again["id"] != document["id"]


async def test_blobs_no_document_refers_to_are_collected(api: Api, stack: Stack) -> None:
    lead = (await api.create_lead())["id"]
    live = await attach(api, lead, unique_pdf())
    gone = await attach(api, lead, unique_pdf())
    assert (await api.request("DELETE", f"/api/documents/{gone['id']}"))[0] == 200
    orphan = unique_pdf()  # stored by the gateway, refused by the service: no document refers to it
    status, _, _ = await api.upload(f"/api/leads/{uuid4()}/documents", orphan, "a.pdf", "application/pdf")
    assert status == 404
    paths = {
        name: blob_path(stack, sha)
        for name, sha in (
            ("live", live["sha256"]),
            ("deleted", gone["sha256"]),
            ("orphan", hashlib.sha256(orphan).hexdigest()),
        )
    }
    assert all(p.exists() for p in paths.values())
    for path in paths.values():
        age(path)
    await eventually(
        lambda: not paths["orphan"].exists() and not paths["deleted"].exists(),
        15,
        0.1,
        "the unreferenced blobs to be collected",
    )
    second = unique_pdf()  # a full pass of the collector after the first: it spares the live document's blob
    assert (await api.upload(f"/api/leads/{uuid4()}/documents", second, "b.pdf", "application/pdf"))[0] == 404
    age(blob_path(stack, hashlib.sha256(second).hexdigest()))
    await eventually(
        lambda: not blob_path(stack, hashlib.sha256(second).hexdigest()).exists(),
        15,
        0.1,
        "the second unreferenced blob to be collected",
    )
    assert paths["live"].exists()
    assert (await download(api, live["id"]))[0] == 200


async def test_young_unreferenced_blobs_are_kept(api: Api, stack: Stack) -> None:
    orphan = unique_pdf()
    assert (await api.upload(f"/api/leads/{uuid4()}/documents", orphan, "a.pdf", "application/pdf"))[0] == 404
    path = blob_path(stack, hashlib.sha256(orphan).hexdigest())
    assert path.exists()  # the grace period (2 s here) covers a command still on its way
    await eventually(lambda: not path.exists(), 15, 0.1, "the blob to be collected once the grace period passed")


async def test_the_command_carries_the_claim_check_not_the_bytes(api: Api, amqp: aio_pika.abc.AbstractChannel) -> None:
    queue = await amqp.declare_queue(f"test.attach.{uuid4().hex[:8]}", exclusive=True, auto_delete=True)
    await queue.bind("commands", "documents.attach")
    seen: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        seen.append(message)

    await queue.consume(keep, no_ack=True)
    lead = (await api.create_lead())["id"]
    data = unique_pdf() + b"MARKER-" * 40_000
    document = await attach(api, lead, data, "big.pdf")
    [message] = await eventually(
        lambda: [m for m in seen if json.loads(m.body)["leadId"] == lead], 10, what="the attach command"
    )
    assert len(message.body) < 1000 and b"MARKER" not in message.body
    assert json.loads(message.body) == {
        "leadId": lead,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "contentType": "application/pdf",
        "filename": "big.pdf",
    }
    assert document["size"] == len(data)


async def test_the_python_client_attaches_with_one_key_and_downloads(api: Api, stack: Stack, tmp_path: Path) -> None:
    lead, data = (await api.create_lead())["id"], unique_pdf()
    (tmp_path / "offer.pdf").write_bytes(data)
    proxy = await Proxy(stack.url).start()
    try:
        proxy.lose_answers = 1  # the gateway attaches it, the client never hears, and sends the file again
        async with fast(proxy.url, api.token) as client:
            body = await client.attach_document(lead, tmp_path / "offer.pdf")
            assert await client.download_document(body["document"]["id"]) == data
            again = await client.attach_document(lead, b"plain words\n", filename="notes.txt")
            with pytest.raises(crm_client.NotFound):
                await client.attach_document(str(uuid4()), b"x", filename="x.txt")
            with pytest.raises(crm_client.Refused) as refused:
                await client.attach_document(lead, PNG, filename="x.pdf", content_type="application/pdf")
        posts = proxy.posts(f"/api/leads/{lead}/documents")
        assert len(posts) == 4 and posts[0][2] == posts[1][2] and len({p[2] for p in posts}) == 3
    finally:
        await proxy.stop()
    assert refused.value.status == 415 and again["document"]["content_type"] == "text/plain"
    assert isinstance(refused.value, problems.ContentTypeMismatch)
    assert body["document"]["filename"] == "offer.pdf"
    listed = (await api.get(f"/api/leads/{lead}/documents"))[2]["documents"]  # type: ignore[index]
    assert [d["filename"] for d in listed] == ["offer.pdf", "notes.txt"]


async def test_the_command_line_attaches_a_file(api: Api, stack: Stack, tmp_path: Path) -> None:
    lead, data = (await api.create_lead())["id"], unique_pdf()
    (tmp_path / "scan.pdf").write_bytes(data)
    env = {"CRM_URL": stack.url, "CRM_TOKEN": api.token}
    code, (attached,), _ = await crm("document", "attach", lead, str(tmp_path / "scan.pdf"), env=env)
    assert code == 0 and attached["document"]["sha256"] == hashlib.sha256(data).hexdigest()
    code, (listed,), _ = await crm("document", "list", lead, env=env)
    assert code == 0 and listed == {"documents": [attached["document"]]}
    code, (problem,), _ = await asyncio.wait_for(
        crm("document", "attach", lead, str(tmp_path / "scan.pdf"), "--content-type", "image/png", env=env), 60
    )
    assert code == 1 and problem["status"] == 415
