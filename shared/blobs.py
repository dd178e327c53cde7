"""The blob store: large bodies kept beside the messages, never in them (the claim check).

Guarantee: a blob is named by the SHA-256 of its bytes and is there whole or not at all.
`put` writes a temporary file, fsyncs it and renames it into place (one atomic step on one
file system), so a reader never sees half a blob and a crash leaves only a temporary file,
swept later. The same bytes put twice are one blob; putting (or `touch`ing) them again
refreshes the blob's time, which is what the collector judges by.

    put(chunks) ──► <BLOB_DIR>/tmp/<random>.part ──fsync──► rename ──► <BLOB_DIR>/<aa>/<sha256>
                    hashed and counted on the way (more than max_bytes: TooLarge, nothing kept)

`delete(sha, older_than)` removes a blob only if it was not put again since `older_than`
(the collector's cutoff): a rename out of the way, a look at its time, then unlink, or
rename back when an upload refreshed it meanwhile (the same bytes, whatever is there now).

`BLOB_STORE=dir` (default) keeps them under BLOB_DIR; `BLOB_STORE=s3` in a bucket
(shared/blobs_s3.py). Make one with `open_store(settings)`; close it with `close()`.
"""

import asyncio
import hashlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal, NamedTuple
from uuid import uuid4

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 256 * 1024


class BlobSettings(BaseSettings):
    """Where blobs live: mixed into the settings of each process that reads or writes them."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    blob_store: Literal["dir", "s3"] = "dir"
    blob_dir: Path = Path("var/blobs")  # BLOB_STORE=dir; shared by the gateway and the documents service
    # BLOB_STORE=s3: the bucket (required), an S3-compatible endpoint (empty: AWS itself), the key prefix.
    # Credentials come the AWS way (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance role).
    blob_s3_bucket: str = Field("", validate_default=True)
    blob_s3_endpoint_url: str = ""
    blob_s3_region: str = "us-east-1"
    blob_s3_prefix: str = "blobs/"

    @field_validator("blob_s3_bucket")
    @classmethod
    def _bucket_for_s3(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("blob_store") == "s3" and not value:
            raise ValueError("is required when BLOB_STORE=s3")
        return value


class Blob(NamedTuple):
    sha256: str
    size: int
    modified: datetime


class TooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


async def spool(
    chunks: AsyncIterable[bytes], max_bytes: int | None, write: Callable[[bytes], object]
) -> tuple[str, int]:
    """Every store's upload: each chunk counted (TooLarge past `max_bytes`), hashed and written (in a thread)
    as it comes; the SHA-256 and the size."""
    digest, size = hashlib.sha256(), 0
    async for chunk in chunks:
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise TooLarge(max_bytes)
        digest.update(chunk)
        await asyncio.to_thread(write, chunk)
    return digest.hexdigest(), size


class BlobStore(ABC):
    @abstractmethod
    async def put(self, chunks: AsyncIterable[bytes], max_bytes: int | None = None) -> Blob:
        """Store the bytes `chunks` gives; TooLarge (and nothing kept) past `max_bytes`."""

    @abstractmethod
    async def stat(self, sha256: str) -> Blob | None: ...

    @abstractmethod
    async def touch(self, sha256: str) -> Blob | None:
        """Refresh the blob's time (it is in use: not to be collected); None when there is no such blob."""

    @abstractmethod
    async def open(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncGenerator[bytes] | None:
        """Bytes [start, end) of the blob, in chunks (close the iterator if you stop early); None when absent."""

    @abstractmethod
    async def delete(self, sha256: str, older_than: datetime | None = None) -> bool:
        """Remove the blob, unless it was put or touched after `older_than`; True when removed."""

    @abstractmethod
    def list(self) -> AsyncIterator[Blob]: ...

    async def sweep(self, older_than: datetime) -> int:
        """Remove what interrupted puts left behind before `older_than`; how many."""
        return 0

    async def close(self) -> None:
        return None


def checked(sha256: str) -> str:
    if not SHA256.match(sha256):
        raise ValueError(f"not a sha256: {sha256!r}")
    return sha256


class DirectoryStore(BlobStore):
    def __init__(self, root: Path):
        self.root = Path(root)  # made by the first put
        self.tmp = self.root / "tmp"

    def path(self, sha256: str) -> Path:
        return self.root / checked(sha256)[:2] / sha256

    async def put(self, chunks: AsyncIterable[bytes], max_bytes: int | None = None) -> Blob:
        part = self.tmp / f"{uuid4().hex}.part"
        await asyncio.to_thread(self.tmp.mkdir, parents=True, exist_ok=True)
        file = await asyncio.to_thread(part.open, "xb")
        try:
            sha256, size = await spool(chunks, max_bytes, file.write)
            await asyncio.to_thread(_flush, file)
            await asyncio.to_thread(_install, part, self.path(sha256))
        except BaseException:
            file.close()
            part.unlink(missing_ok=True)
            raise
        return Blob(sha256, size, datetime.now(UTC))

    async def stat(self, sha256: str) -> Blob | None:
        return await asyncio.to_thread(self._stat, sha256)

    def _stat(self, sha256: str) -> Blob | None:
        try:
            st = self.path(sha256).stat()
        except FileNotFoundError:
            return None
        return Blob(sha256, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    async def touch(self, sha256: str) -> Blob | None:
        try:
            await asyncio.to_thread(os.utime, self.path(sha256))
        except FileNotFoundError:
            return None
        return await self.stat(sha256)

    async def open(self, sha256: str, start: int = 0, end: int | None = None) -> AsyncGenerator[bytes] | None:
        try:
            file = await asyncio.to_thread(self.path(sha256).open, "rb")
        except FileNotFoundError:
            return None
        return _chunks(file, start, end)

    async def delete(self, sha256: str, older_than: datetime | None = None) -> bool:
        return await asyncio.to_thread(self._delete, self.path(sha256), older_than)

    def _delete(self, path: Path, older_than: datetime | None) -> bool:
        grave = self.tmp / f"{path.name}.{uuid4().hex}.gone"
        try:
            path.rename(grave)  # out of the way first: an upload of the same bytes now makes a new file
        except FileNotFoundError:
            return False
        if older_than is not None and grave.stat().st_mtime > older_than.timestamp():
            os.replace(grave, path)  # put again meanwhile: keep it (the same bytes as anything there now)
            return False
        grave.unlink()
        return True

    async def list(self) -> AsyncIterator[Blob]:
        def folders() -> list[Path]:
            return sorted(p for p in self.root.iterdir() if len(p.name) == 2) if self.root.is_dir() else []

        for folder in await asyncio.to_thread(folders):
            for blob in await asyncio.to_thread(self._list, folder):
                yield blob

    def _list(self, folder: Path) -> tuple[Blob, ...]:
        found = []
        for entry in os.scandir(folder):
            if SHA256.match(entry.name):
                try:
                    st = entry.stat()
                except FileNotFoundError:  # collected meanwhile
                    continue
                found.append(Blob(entry.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)))
        return tuple(found)

    async def sweep(self, older_than: datetime) -> int:
        def sweep() -> int:
            removed = 0
            for left in self.tmp.iterdir() if self.tmp.is_dir() else ():
                try:
                    if left.stat().st_mtime < older_than.timestamp():  # still written to: a fresh time
                        left.unlink()
                        removed += 1
                except FileNotFoundError:  # renamed into place, or swept by another instance, meanwhile
                    pass
            return removed

        return await asyncio.to_thread(sweep)


def _flush(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()


def _install(part: Path, final: Path) -> None:
    """Rename into place, then fsync the folder so that the new name survives a crash too."""
    final.parent.mkdir(exist_ok=True)
    os.replace(part, final)  # the same bytes may be there already: replacing them changes nothing but the time
    folder = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


async def _chunks(file: BinaryIO, start: int, end: int | None) -> AsyncGenerator[bytes]:
    try:
        await asyncio.to_thread(file.seek, start)
        left = None if end is None else end - start
        while left is None or left > 0:
            chunk = await asyncio.to_thread(file.read, CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk
    finally:
        file.close()


def open_store(settings: BlobSettings) -> BlobStore:
    if settings.blob_store == "s3":  # only then is the S3 client library loaded
        from shared.blobs_s3 import S3Store

        return S3Store(
            settings.blob_s3_bucket,
            settings.blob_s3_endpoint_url or None,
            settings.blob_s3_region,
            settings.blob_s3_prefix,
        )
    return DirectoryStore(settings.blob_dir)
