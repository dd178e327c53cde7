"""The blob store in an S3 bucket (or any S3-compatible store: MinIO, Ceph, ...): BLOB_STORE=s3.

The client is aiobotocore: botocore (the AWS SDK's own core, which does the signing, retries,
endpoints and credentials chain) made async on aiohttp, the HTTP library the gateway already
runs on. It is the library aioboto3 wraps; we need only the low-level client, so not the wrapper,
and not boto3 in a thread (a thread per request, and a second HTTP stack).

The name of a blob is its hash, known only once every byte was read, so an upload is spooled
to a local temporary file while it is hashed and counted (never the whole file in memory),
then sent with one PUT under `<prefix><sha256>`; a PUT of an object is atomic in S3: it is
there whole or not at all. Putting the same bytes again refreshes LastModified (the time the
collector judges by), as `touch` does with a copy onto itself.

Not as strict as the directory store: `delete(sha, older_than)` looks at LastModified, then
deletes; an upload of the same bytes landing between the two is lost (the next attach of it
is refused, "upload again"). S3 has no rename to close that gap.
"""

import asyncio
import tempfile
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from shared.blobs import CHUNK, SHA256, Blob, BlobStore, checked, spool

MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Store(BlobStore):
    def __init__(self, bucket: str, endpoint_url: str | None, region: str, prefix: str):
        self.bucket, self.prefix = bucket, prefix
        self._options = {"endpoint_url": endpoint_url, "region_name": region}
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._opening = asyncio.Lock()

    async def client(self) -> Any:
        """Opened on first use, inside the running loop (the store itself is made before there is one)."""
        async with self._opening:
            if self._client is None:
                self._client = await self._stack.enter_async_context(get_session().create_client("s3", **self._options))
        return self._client

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    def key(self, sha256: str) -> str:
        return self.prefix + checked(sha256)

    async def put(self, chunks: AsyncIterable[bytes], max_bytes: int | None = None) -> Blob:
        with tempfile.TemporaryFile() as file:
            sha256, size = await spool(chunks, max_bytes, file.write)
            await asyncio.to_thread(file.seek, 0)
            s3 = await self.client()
            await s3.put_object(Bucket=self.bucket, Key=self.key(sha256), Body=file, ContentLength=size)
        blob = await self.stat(sha256)
        assert blob is not None, "an object just put is there"
        return blob

    async def stat(self, sha256: str) -> Blob | None:
        s3 = await self.client()
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return Blob(sha256, head["ContentLength"], head["LastModified"])

    async def touch(self, sha256: str) -> Blob | None:
        key, s3 = self.key(sha256), await self.client()
        try:  # a copy onto itself is allowed when the metadata is replaced: a new LastModified
            await s3.copy_object(
                Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key}, MetadataDirective="REPLACE"
            )
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return await self.stat(sha256)

    async def open(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncGenerator[bytes] | None:
        ranged = {} if start == 0 and end is None else {"Range": f"bytes={start}-{'' if end is None else end - 1}"}
        if end is not None and end <= start:
            return _empty()
        s3 = await self.client()
        try:
            got = await s3.get_object(Bucket=self.bucket, Key=self.key(sha256), **ranged)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return _body(got["Body"])

    async def delete(self, sha256: str, older_than: datetime | None = None) -> bool:
        blob = await self.stat(sha256)
        if blob is None or (older_than is not None and blob.modified > older_than):
            return False
        s3 = await self.client()
        await s3.delete_object(Bucket=self.bucket, Key=self.key(sha256))
        return True

    async def list(self) -> AsyncIterator[Blob]:
        s3 = await self.client()
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        async for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix) :]
                if SHA256.match(name):
                    yield Blob(name, item["Size"], item["LastModified"])


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in MISSING


async def _body(body: Any) -> AsyncGenerator[bytes]:
    async with body:
        async for chunk in body.iter_chunks(CHUNK):
            yield chunk


async def _empty() -> AsyncGenerator[bytes]:
    return
    yield  # an async generator that gives nothing
