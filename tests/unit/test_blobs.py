"""The blob store's contract, the same tests for the directory store and for the S3 store (against
moto's S3 server on 127.0.0.1), and the collector of blobs no document refers to."""

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from moto.server import ThreadedMotoServer

from services.documents.collector import collect_once
from shared.blobs import BlobSettings, BlobStore, DirectoryStore, TooLarge, open_store
from shared.blobs_s3 import S3Store
from tests.support.stack import eventually

HOUR = timedelta(hours=1)


async def chunks(*parts: bytes, gate: asyncio.Event | None = None, fail: bool = False) -> AsyncIterator[bytes]:
    for i, part in enumerate(parts):
        if gate is not None and i == len(parts) - 1:
            await gate.wait()
        yield part
    if fail:
        raise ConnectionResetError("the uploader went away")


async def read(store: BlobStore, sha256: str, start: int = 0, end: int | None = None) -> bytes | None:
    got = await store.open(sha256, start, end)
    return None if got is None else b"".join([c async for c in got])


async def names(store: BlobStore) -> set[str]:
    return {b.sha256 async for b in store.list()}


@pytest.fixture(scope="module")
def moto_s3() -> AsyncIterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["dir", "s3"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BlobStore]:
    if request.param == "dir":
        made: BlobStore = DirectoryStore(tmp_path / "blobs")
    else:
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
            monkeypatch.setenv(name, value)
        bucket = f"blobs-{uuid4().hex[:8]}"
        made = S3Store(bucket, request.getfixturevalue("moto_s3"), "us-east-1", "blobs/")
        await (await made.client()).create_bucket(Bucket=bucket)
    yield made
    await made.close()


async def test_a_blob_is_named_by_its_hash_and_read_back_whole_or_in_part(store: BlobStore) -> None:
    data = os.urandom(700_000)
    blob = await store.put(chunks(data[:1000], data[1000:500_000], data[500_000:]))
    assert (blob.sha256, blob.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert await read(store, blob.sha256) == data
    assert await read(store, blob.sha256, 10, 20) == data[10:20]
    assert await read(store, blob.sha256, 699_990) == data[699_990:]
    stat = await store.stat(blob.sha256)
    assert stat is not None and stat.size == len(data)
    assert abs(stat.modified - datetime.now(UTC)) < timedelta(minutes=1)
    [listed] = [b async for b in store.list()]
    assert (listed.sha256, listed.size) == (blob.sha256, len(data))


async def test_the_same_bytes_put_twice_are_one_blob(store: BlobStore) -> None:
    first = await store.put(chunks(b"the same ", b"bytes"))
    second = await store.put(chunks(b"the same bytes"))
    assert first.sha256 == second.sha256 and await names(store) == {first.sha256}


async def test_past_the_limit_or_cut_short_nothing_is_kept(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(TooLarge):
        await store.put(chunks(b"x" * 600, b"y" * 600), max_bytes=1000)
    with pytest.raises(ConnectionResetError):
        await store.put(chunks(b"half a file", fail=True))
    assert await names(store) == set()
    if isinstance(store, DirectoryStore):
        assert list(store.tmp.iterdir()) == []  # no temporary file left behind either


async def test_a_blob_appears_under_its_name_only_once_complete(tmp_path: Path) -> None:
    store, gate = DirectoryStore(tmp_path / "blobs"), asyncio.Event()
    data = [b"a" * 100_000, b"b" * 100_000]
    putting = asyncio.create_task(store.put(chunks(*data, gate=gate)))
    await eventually(lambda: store.tmp.is_dir() and list(store.tmp.glob("*.part")), 5, 0.01, "the put to begin")
    final = store.path(hashlib.sha256(b"".join(data)).hexdigest())
    assert not final.exists() and await names(store) == set()
    gate.set()
    blob = await putting
    assert final.read_bytes() == b"".join(data) and store.path(blob.sha256) == final
    assert list(store.tmp.iterdir()) == []


async def test_delete_spares_a_blob_put_or_touched_after_the_cutoff(store: BlobStore) -> None:
    blob = await store.put(chunks(b"kept for a while"))
    assert not await store.delete(blob.sha256, older_than=datetime.now(UTC) - HOUR)  # put after that cutoff
    touched = await store.touch(blob.sha256)
    assert touched is not None and touched.modified >= blob.modified - timedelta(seconds=1)
    assert await read(store, blob.sha256) == b"kept for a while"
    assert await store.delete(blob.sha256, older_than=datetime.now(UTC) + HOUR)
    assert await store.stat(blob.sha256) is None and await read(store, blob.sha256) is None
    assert await store.touch(blob.sha256) is None and not await store.delete(blob.sha256)


async def test_the_collector_removes_old_blobs_no_document_refers_to(store: BlobStore) -> None:
    referenced, *orphans = [(await store.put(chunks(text))).sha256 for text in (b"in a doc", b"orphan", b"another")]
    in_use_now = {referenced}
    asked: list[tuple[str, datetime]] = []

    async def in_use(sha256: str, since: datetime) -> bool:
        asked.append((sha256, since))
        return sha256 in in_use_now

    assert await collect_once(store, in_use, HOUR) == 0  # all younger than the grace period
    assert asked == []
    later = datetime.now(UTC) + 2 * HOUR  # as if two hours had passed: all three are old now
    assert await collect_once(store, in_use, HOUR, now=later) == 2
    assert await names(store) == {referenced} and len(orphans) == 2
    assert {since for _, since in asked} == {later - HOUR}


async def test_the_collector_sweeps_what_interrupted_puts_left(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "blobs")
    await store.put(chunks(b"something"))
    left = store.tmp / "crashed.part"
    left.write_bytes(b"half")
    old = (datetime.now(UTC) - 2 * HOUR).timestamp()
    os.utime(left, (old, old))
    fresh = store.tmp / "uploading.part"
    fresh.write_bytes(b"in progress")

    async def in_use(sha256: str, since: datetime) -> bool:
        return True

    await collect_once(store, in_use, HOUR)
    assert not left.exists() and fresh.exists()


def test_the_store_is_chosen_by_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLOB_DIR", str(tmp_path / "b"))
    assert isinstance(open_store(BlobSettings()), DirectoryStore)
    assert not (tmp_path / "b").exists()  # made by the first put, not by opening
    monkeypatch.setenv("BLOB_STORE", "s3")
    with pytest.raises(ValueError, match="blob_s3_bucket"):
        BlobSettings()
    monkeypatch.setenv("BLOB_S3_BUCKET", "documents")
    assert isinstance(open_store(BlobSettings()), S3Store)
