"""What a file's first bytes say it is, and whether that agrees with the type its uploader declared.

A small table of signatures, not a library: `filetype` has had no release since 2022, and
`puremagic` (maintained) knows hundreds of signatures, some of two or three bytes that plain
text begins with ("BM" is a bitmap, "ID3" an MP3), and cannot tell text at all: it names
"BMW parts list" a bitmap. We check exactly the kinds we can tell for sure.

    declared type  ──► missing or application/octet-stream: what the bytes are (the file name's
                       type where the bytes agree with it; else application/octet-stream)
                   └─► one the bytes contradict ──► Mismatch (415)
    zip containers (docx, xlsx, pptx, odt, epub...) begin alike: any of them agrees with a zip.
"""

import mimetypes

ZIP, TEXT = "application/zip", "text/plain"
SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", ZIP),
    (b"PK\x05\x06", ZIP),  # an empty zip
)
KNOWN = {kind for _, kind in SIGNATURES}
ZIP_FAMILY = {ZIP, "application/x-zip-compressed", "application/epub+zip", "application/java-archive"}
ZIP_PREFIXES = ("application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.opendocument.")
TEXT_LIKE = {"application/json", "application/xml", "application/x-ndjson", "image/svg+xml"}
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-pdf": "application/pdf"}
GENERIC = {"", "application/octet-stream", "binary/octet-stream"}
CONTROL = set(range(32)) - {9, 10, 12, 13}  # tab, newline, form feed and carriage return are text


class Mismatch(Exception):
    def __init__(self, declared: str, found: str | None):
        what = f"the bytes of a {found} file" if found else "bytes of no type it could be"
        super().__init__(f"the file was declared {declared} but its first bytes are {what}")
        self.declared, self.found = declared, found


def identify(head: bytes) -> str | None:
    """The kind of file `head` (its first bytes) begins; text/plain for UTF-8 text; None when unknown."""
    for magic, kind in SIGNATURES:
        if head.startswith(magic):
            return kind
    return TEXT if _text(head) else None


def content_type(declared: str | None, filename: str, head: bytes) -> str:
    """The type to store: the declared one when the bytes agree with it; raises Mismatch when not."""
    found = identify(head)
    wanted = _normal(declared)
    if wanted in GENERIC:
        guessed = _normal(mimetypes.guess_type(filename, strict=False)[0])
        if guessed not in GENERIC and _agrees(guessed, found):
            return guessed
        return found or "application/octet-stream"
    if not _agrees(wanted, found):
        raise Mismatch(wanted, found)
    return wanted


def _agrees(declared: str, found: str | None) -> bool:
    if found == ZIP:
        return declared in ZIP_FAMILY or declared.startswith(ZIP_PREFIXES)
    if found == TEXT:
        return declared.startswith("text/") or declared in TEXT_LIKE
    if found is None:  # bytes we cannot name: any type we could have recognised is contradicted
        return not (
            declared in KNOWN
            or declared.startswith("text/")
            or declared in TEXT_LIKE
            or declared in ZIP_FAMILY
            or declared.startswith(ZIP_PREFIXES)
        )
    return declared == found


def _normal(content_type: str | None) -> str:
    base = (content_type or "").split(";")[0].strip().lower()
    return ALIASES.get(base, base)


def _text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not merely a character cut at the end of the sample
            return False
    return not CONTROL.intersection(head)
