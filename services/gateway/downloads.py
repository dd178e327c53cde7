"""GET /api/documents/{documentId}/content: a document's bytes, streamed from the blob store.

    documents.query.get (org-checked: another organisation's document is a 404 like an unknown one)
      ──► If-None-Match has its ETag ──► 304
      ──► Range (one range; If-Range, when given, must be its ETag) ──► 206 + Content-Range, or 416
          (past the end, or a position of more than 18 digits)
      ──► 200: Content-Type, Content-Length, Content-Disposition (attachment), ETag "<sha256>"

Not aiohttp's FileResponse, which does ranges for a file: it makes its own ETag from the file's
time and size, ours is the hash (the bytes' own name, which never changes for a document), and
a blob in S3 is no file.
"""

import re
from contextlib import aclosing
from urllib.parse import quote

from aiohttp import hdrs, web

from services.gateway.errors import json_response, refusal_response
from services.gateway.keys import BLOBS
from services.gateway.views import answer_of, not_modified, path_ids
from shared import logging, problems
from shared.contracts.documents import DocumentView, GetDocument

RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")  # not \d: int() would take other scripts' digits too
# An exabyte. A longer position is absurd, not a range to serve (and int() refuses past 4,300 digits: a 500).
MAX_DIGITS = 18
log = logging.get("gateway.downloads")


class Unsatisfiable(Exception):
    pass


async def content(request: web.Request) -> web.StreamResponse:
    query = path_ids(GetDocument, documentId=request.match_info["documentId"])
    answer = await answer_of(request, GetDocument.ROUTING_KEY, query)
    if answer.status != 200:
        return json_response(answer.status, answer.body)
    document = DocumentView.model_validate(answer.body["document"])
    etag = f'"{document.sha256}"'
    headers: dict[str, str] = {hdrs.ETAG: etag, hdrs.CACHE_CONTROL: "private, no-cache", hdrs.ACCEPT_RANGES: "bytes"}
    if not_modified(request, document.sha256):
        return web.Response(status=304, headers=headers)
    try:
        start, end = byte_range(request, document.size, etag) or (0, document.size)
    except Unsatisfiable:  # answered, not raised: its headers are this document's
        return refusal_response(
            problems.RangeNotSatisfiable(f"the document holds {document.size} bytes"),
            {hdrs.CONTENT_RANGE: f"bytes */{document.size}", **headers},
        )
    chunks = await request.app[BLOBS].open(document.sha256, start, end)
    if chunks is None:  # a document whose bytes are gone: never expected (the collector spares them)
        log.error("document.content_missing", document_id=document.id, sha256=document.sha256)
        raise problems.ContentMissing("the document's content cannot be found; it has been logged")
    partial = (start, end) != (0, document.size)
    if partial:
        headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{end - 1}/{document.size}"
    headers |= {
        hdrs.CONTENT_TYPE: document.content_type,
        hdrs.CONTENT_DISPOSITION: disposition(document.filename),
        "X-Content-Type-Options": "nosniff",
    }
    response = web.StreamResponse(status=206 if partial else 200, headers=headers)
    response.content_length = end - start
    async with aclosing(chunks):
        await response.prepare(request)
        if request.method != hdrs.METH_HEAD:
            async for chunk in chunks:
                await response.write(chunk)
    await response.write_eof()
    return response


def byte_range(request: web.Request, size: int, etag: str) -> tuple[int, int] | None:
    """[start, end) of the one range asked for; None for the whole (no Range, one we ignore: several
    ranges or a malformed one, RFC 9110 §14.2, or an If-Range that is not the current ETag)."""
    header = request.headers.get(hdrs.RANGE)
    if header is None or request.headers.get(hdrs.IF_RANGE, etag) != etag:
        return None
    match = RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if max(len(first), len(last)) > MAX_DIGITS:
        raise Unsatisfiable()
    if first == "":  # the last n bytes
        if int(last) == 0 or size == 0:
            raise Unsatisfiable()
        return max(size - int(last), 0), size
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable()
    return start, size if last == "" else min(int(last) + 1, size)


def disposition(filename: str) -> str:
    """attachment, with the name in UTF-8 (RFC 6266 / 8187) and a plain ASCII one for old clients."""
    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"
