"""The gateway's pure parts of documents: the type told from the first bytes, the Range header,
the file name and the Content-Disposition."""

import io
import zipfile

import pytest
from aiohttp.test_utils import make_mocked_request

from services.gateway.downloads import Unsatisfiable, byte_range, disposition
from services.gateway.sniff import Mismatch, content_type, identify
from services.gateway.uploads import file_name
from shared.problems import Invalid

PDF, PNG = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG, GIF = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", b"GIF89a\x01\x00"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def zipped() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("word/document.xml", "<w/>")
    return out.getvalue()


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (PDF, "application/pdf"),
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (GIF, "image/gif"),
        (zipped(), "application/zip"),
        (b"BMW parts list\n", "text/plain"),
        ("Grüße, Ada\r\n".encode(), "text/plain"),
        (b"", "text/plain"),
        (b"\x00\x01\x02binary", None),
        ("é".encode()[:1], "text/plain"),  # a character cut short
    ],
)
def test_the_first_bytes_say_what_a_file_is(head: bytes, kind: str | None) -> None:
    assert identify(head) == kind


@pytest.mark.parametrize(
    ("declared", "filename", "head", "stored"),
    [
        ("application/pdf", "a.pdf", PDF, "application/pdf"),
        ("image/jpg", "a.jpg", JPEG, "image/jpeg"),  # an alias
        (DOCX, "a.docx", zipped(), DOCX),  # a zip container agrees with a zip
        ("text/csv; charset=utf-8", "a.csv", b"a,b\n1,2\n", "text/csv"),
        (None, "report.pdf", PDF, "application/pdf"),
        ("application/octet-stream", "notes.docx", zipped(), DOCX),  # the name's type, the bytes agreeing
        ("application/octet-stream", "photo.pdf", PNG, "image/png"),  # the name lies: the bytes win
        (None, "data.bin", b"\x00\x01\x02", "application/octet-stream"),
        ("video/mp4", "a.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4"),  # a kind we cannot check: as declared
    ],
)
def test_a_declared_type_the_bytes_agree_with_is_kept(
    declared: str | None, filename: str, head: bytes, stored: str
) -> None:
    assert content_type(declared, filename, head) == stored


@pytest.mark.parametrize(
    ("declared", "head"),
    [
        ("application/pdf", PNG),
        ("image/png", b"just some text\n"),
        ("text/plain", b"\x00\x01\x02binary"),
        ("application/pdf", b"\x00\x01\x02binary"),
        (DOCX, PDF),
        ("video/mp4", PDF),
    ],
)
def test_a_declared_type_the_bytes_contradict_is_refused(declared: str, head: bytes) -> None:
    with pytest.raises(Mismatch):
        content_type(declared, "file", head)


def ranged(value: str | None, if_range: str | None = None) -> object:
    headers = {k: v for k, v in (("Range", value), ("If-Range", if_range)) if v is not None}
    return make_mocked_request("GET", "/", headers=headers)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 10)),
        ("bytes=5-", (5, 100)),
        ("bytes=-10", (90, 100)),
        ("bytes=90-500", (90, 100)),
        ("bytes=-500", (0, 100)),
        ("bytes=9-5", None),
        ("bytes=0-1,5-6", None),
        ("items=0-5", None),
    ],
)
def test_one_range_is_served_and_others_are_ignored(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(ranged(header), 100, '"e"') == expected  # type: ignore[arg-type]


def test_a_range_past_the_end_is_unsatisfiable_and_if_range_must_match() -> None:
    for header in ("bytes=100-", "bytes=-0", "bytes=200-300"):
        with pytest.raises(Unsatisfiable):
            byte_range(ranged(header), 100, '"e"')  # type: ignore[arg-type]
    assert byte_range(ranged("bytes=0-9", '"e"'), 100, '"e"') == (0, 10)  # type: ignore[arg-type]
    assert byte_range(ranged("bytes=0-9", '"old"'), 100, '"e"') is None  # type: ignore[arg-type]


def test_file_names_lose_folders_and_control_characters() -> None:
    assert file_name("C:\\fakepath\\report.pdf") == "report.pdf"
    assert file_name("../../etc/passwd") == "passwd"
    assert file_name("a\r\nb\x00.txt") == "ab.txt"
    assert file_name("Gr%C3%BC%C3%9Fe%20%22x%22.pdf") == 'Grüße "x".pdf'  # percent-encoded, as RFC 7578 allows
    assert file_name("a%2Fb%0A.pdf") == "b.pdf"  # decoded first: no folder, no line break sneaks in
    with pytest.raises(Invalid):
        file_name("folder/")


def test_content_disposition_carries_any_name() -> None:
    assert disposition('Grüße "2024".pdf') == (
        "attachment; filename=\"Gr__e _2024_.pdf\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%222024%22.pdf"
    )


def test_openapi_says_the_upload_is_multipart_and_where_the_bytes_are() -> None:
    from services.gateway.openapi import document

    paths = document()["paths"]
    upload = paths["/api/leads/{leadId}/documents"]["post"]
    assert upload["operationId"] == "attach_document" and set(upload["requestBody"]["content"]) == {
        "multipart/form-data"
    }
    assert {"413", "415"} <= set(upload["responses"])
    content = paths["/api/documents/{documentId}/content"]["get"]
    assert {"200", "206", "304", "404", "416"} <= set(content["responses"])
    assert set(paths["/api/documents/{documentId}"]) == {"get", "delete"}
