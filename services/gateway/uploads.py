"""An upload: the file part of a multipart body streamed into the blob store (the claim check).

    POST multipart/form-data, one part (the row's `upload`, "file")
      ──► a part encoding aiohttp cannot undo (or a Content-Encoding, RFC 7578 §4.8) ──► 415, nothing read
      ──► its first bytes read: a declared type they contradict ──► 415, nothing stored
      ──► the rest streamed into the blob store, hashed and counted ── past DOCUMENT_MAX_BYTES ──► 413, nothing kept
      ──► {sha256, size, contentType, filename}: the command's fields; the bytes stay in the store

The file is never held in memory: chunks go from the socket to a temporary file. A retried
upload stores the same blob again (same bytes, same name) and makes the same command body,
so with its Idempotency-Key it is one command. The command's service checks the rest.
"""

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from services.gateway import sniff
from services.gateway.keys import BLOBS, SETTINGS
from shared import problems
from shared.blobs import TooLarge

SNIFF_BYTES = 4096
READ_CHUNK = 64 * 1024
MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file: a body longer than the limit by more
UNSAFE_IN_NAME = re.compile(r"[\x00-\x1f\x7f]")
# The Content-Transfer-Encodings aiohttp decodes (any other raises RuntimeError in `part.decode`: a 500).
TRANSFER_ENCODINGS = {"binary", "8bit", "7bit", "base64", "quoted-printable"}


async def read(request: web.Request, part_name: str) -> dict[str, Any]:
    """The command's fields for the file in part `part_name`, once its bytes are in the blob store."""
    limit = request.app[SETTINGS].document_max_bytes
    if request.content_type != "multipart/form-data":
        raise problems.UnsupportedMediaType(f"send multipart/form-data with the file in a part named {part_name!r}")
    if request.content_length is not None and request.content_length > limit + MULTIPART_SLACK:
        raise too_large(limit)  # said before a byte is read
    fields: dict[str, Any] | None = None
    try:
        reader = await request.multipart()
        async for part in reader:
            name = getattr(part, "name", None)
            if not isinstance(part, BodyPartReader) or name != part_name or fields is not None:
                detail = "one file per upload" if fields is not None else f"no part but {part_name!r}, not {name!r}"
                raise problems.Invalid(
                    f"the body must hold one part, {part_name!r}: {detail}",
                    errors=[{"field": str(name), "message": "unexpected part"}],
                )
            fields = await store(request, part, limit)
    except (ValueError, HttpProcessingError) as exc:  # a boundary missing, a part cut short, a bad part header
        raise problems.MalformedMultipart(f"the multipart body cannot be read: {exc}") from None
    if fields is None:
        raise problems.Invalid(
            f"the file part {part_name!r} is missing", errors=[{"field": part_name, "message": "required"}]
        )
    return fields


async def store(request: web.Request, part: BodyPartReader, limit: int) -> dict[str, Any]:
    filename = file_name(part.filename)
    plain(part)
    head = await _head(part)
    try:
        content_type = sniff.content_type(part.headers.get(hdrs.CONTENT_TYPE), filename, head)
    except sniff.Mismatch as exc:
        raise problems.ContentTypeMismatch(str(exc), declared=exc.declared, detected=exc.found) from None
    try:
        blob = await request.app[BLOBS].put(_rest(head, part), max_bytes=limit)
    except TooLarge:
        raise too_large(limit) from None
    return {"sha256": blob.sha256, "size": blob.size, "contentType": content_type, "filename": filename}


def file_name(given: str | None) -> str:
    """The name without any folder a browser may add ("C:\\fakepath\\x.pdf") and without control characters.
    Percent-encoding is undone: RFC 7578 §4.2 lets a sender use it (aiohttp's client does; browsers encode
    the quote and line breaks so)."""
    name = UNSAFE_IN_NAME.sub("", re.split(r"[/\\]", unquote(given or ""))[-1]).strip()
    if not name:
        raise problems.Invalid(
            'the file part has no file name (Content-Disposition: form-data; name="file"; filename="...")',
            errors=[{"field": "filename", "message": "required"}],
        )
    return name


def plain(part: BodyPartReader) -> None:
    """The part's bytes are the file's, or in a transfer encoding aiohttp undoes. A Content-Encoding is refused,
    not ignored as aiohttp does in form-data: kept, the compressed bytes would become the document."""
    transfer, encoding = part.headers.get(hdrs.CONTENT_TRANSFER_ENCODING), part.headers.get(hdrs.CONTENT_ENCODING)
    if transfer is not None and transfer.lower() not in TRANSFER_ENCODINGS:
        detail = f"Content-Transfer-Encoding {transfer[:40]!r} is none of {', '.join(sorted(TRANSFER_ENCODINGS))}"
    elif encoding is not None and encoding.lower() != "identity":
        detail = f"a part's Content-Encoding ({encoding[:40]!r}) has no place in form-data: send the file's bytes"
    else:
        return
    raise problems.UnsupportedEncoding(detail)


def too_large(limit: int) -> problems.TooLarge:
    return problems.TooLarge(f"a document may hold at most {limit} bytes", maxBytes=limit)


async def _head(part: BodyPartReader) -> bytes:
    head = b""
    while len(head) < SNIFF_BYTES:
        chunk = await part.read_chunk(READ_CHUNK)
        if not chunk:
            break
        head += part.decode(chunk)
    return bytes(head)


async def _rest(head: bytes, part: BodyPartReader) -> AsyncIterator[bytes]:
    if head:
        yield head
    while chunk := await part.read_chunk(READ_CHUNK):
        yield bytes(part.decode(chunk))
