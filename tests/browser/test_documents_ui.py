"""Documents in the lead panel: uploaded from the page (listed live in another tab too), downloaded with the
same bytes, deleted; a file whose name and type contradict its bytes refused in words; offline, an upload
is not kept: the page says it needs a connection. Checked through the API."""

import base64

from playwright.async_api import Locator, Page, Route, expect

from tests.browser.conftest import Pages, live, row
from tests.conftest import Api

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYPj/HwADAgH/eUJ1WQAAAABJRU5ErkJggg=="
)
TEXT = "Meeting notes\nAda wants the annual plan. Café at 10.\n".encode()


async def documents(api: Api, lead: str) -> list[dict]:
    status, _, body = await api.get(f"/api/leads/{lead}/documents")
    assert status == 200, body
    return body["documents"]


async def open_lead(page: Page, lead: str, name: str) -> None:
    await row(page, lead).get_by_role("button", name=f"open {name}").click()
    await expect(page.locator("#lead-title")).to_have_text(name)


def document(page: Page, filename: str) -> Locator:
    return page.get_by_test_id("document-row").filter(has_text=filename)


async def upload(page: Page, name: str, mime: str, data: bytes) -> None:
    await page.get_by_test_id("document-upload").set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}]
    )
    await page.get_by_test_id("document-upload-send").click()


async def test_upload_download_and_delete_listed_live(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Doc Lead"))["id"]
    page, other = await pages.open(org), await pages.open(org)
    for p in (page, other):
        await live(p)
        await open_lead(p, lead, "Doc Lead")
    await upload(page, "pixel.png", "image/png", PNG)
    await expect(document(page, "pixel.png")).to_have_count(1)
    await expect(document(other, "pixel.png")).to_have_count(1)  # the other tab hears of it by the live feed
    await expect(document(page, "pixel.png")).to_contain_text("PNG image")
    await upload(page, "notes.txt", "text/plain", TEXT)
    await expect(document(other, "notes.txt")).to_have_count(1)
    await expect(page.get_by_test_id("document-row")).to_have_count(2)
    await expect(
        page.locator('[data-testid="notice"][data-kind="success"]').filter(has_text="notes.txt")
    ).to_contain_text("is attached to Doc Lead")
    listed = {d["filename"]: d for d in await documents(api, lead)}
    assert (listed["pixel.png"]["content_type"], listed["pixel.png"]["size"]) == ("image/png", len(PNG))
    assert (listed["notes.txt"]["content_type"], listed["notes.txt"]["size"]) == ("text/plain", len(TEXT))
    await expect(document(page, "notes.txt")).to_contain_text(f"{len(TEXT)} bytes")

    for name, data in (("pixel.png", PNG), ("notes.txt", TEXT)):
        async with page.expect_download() as info:
            await document(page, name).get_by_test_id("document-download").click()
        download = await info.value
        assert download.suggested_filename == name
        with open(await download.path(), "rb") as saved:
            assert saved.read() == data

    await document(page, "notes.txt").get_by_test_id("document-delete").click()
    await expect(document(page, "notes.txt")).to_have_count(0)
    await expect(document(other, "notes.txt")).to_have_count(0)
    await expect(page.get_by_test_id("document-row")).to_have_count(1)
    assert [d["filename"] for d in await documents(api, lead)] == ["pixel.png"]
    gone = listed["notes.txt"]["id"]
    assert (await api.get(f"/api/documents/{gone}/content"))[0] == 404

    narrow = await pages.open(org, viewport={"width": 390, "height": 844})
    await open_lead(narrow, lead, "Doc Lead")
    await expect(narrow.get_by_test_id("document-row")).to_have_count(1)
    scroll = await narrow.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll[0] <= scroll[1], f"horizontal scroll at 390 px: {scroll}"
    for testid in ("document-upload", "document-upload-send", "document-download", "document-delete"):
        box = await narrow.get_by_test_id(testid).first.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (testid, box)
    await narrow.get_by_test_id("document-row").scroll_into_view_if_needed()
    await narrow.screenshot(path="/tmp/console-documents-390.png")


async def test_an_upload_whose_answer_is_lost_is_retried_with_its_key(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Retry Doc"))["id"]
    page = await pages.open(org, service_workers="block")
    keys: list[str] = []

    async def lose_the_first_answer(route: Route) -> None:
        if route.request.method != "POST":
            return await route.continue_()
        keys.append(await route.request.header_value("idempotency-key") or "")
        if len(keys) == 1:
            await route.fetch()  # the gateway has it, and answers...
            return await route.abort("connectionreset")  # ...but the page never hears it
        await route.continue_()

    await page.route(f"**/api/leads/{lead}/documents", lose_the_first_answer)
    await live(page)
    await open_lead(page, lead, "Retry Doc")
    await upload(page, "notes.txt", "text/plain", TEXT)
    await expect(page.locator('[data-testid="notice"][data-kind="success"]')).to_contain_text("notes.txt is attached")
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0], keys  # one press, one key, sent twice
    await expect(page.get_by_test_id("document-row")).to_have_count(1)
    assert [d["filename"] for d in await documents(api, lead)] == ["notes.txt"]


async def test_a_file_whose_name_and_type_contradict_its_bytes_is_refused_in_words(
    pages: Pages, api: Api, org: str
) -> None:
    lead = (await api.create_lead("Picky Lead"))["id"]
    page = await pages.open(org)
    await live(page)
    await open_lead(page, lead, "Picky Lead")
    await upload(page, "holiday.png", "image/png", b"not a picture at all, just words\n")
    refused = page.locator('[data-testid="notice"][data-kind="error"]')
    await expect(refused).to_contain_text(
        "holiday.png was refused: it says it is a PNG image, but its content is text."
    )
    assert "415" not in await refused.inner_text()
    await upload(page, "report.pdf", "application/pdf", PNG)  # a PNG named and declared a PDF
    await expect(refused.filter(has_text="report.pdf")).to_contain_text(
        "it says it is a PDF, but its content is a PNG image"
    )
    await expect(page.get_by_test_id("document-row")).to_have_count(0)
    assert await documents(api, lead) == []


async def test_an_upload_offline_says_it_needs_a_connection(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Offline Doc"))["id"]
    page = await pages.open(org)
    await live(page)
    await open_lead(page, lead, "Offline Doc")
    await page.context.set_offline(True)
    await upload(page, "pixel.png", "image/png", PNG)
    await expect(page.locator('[data-testid="notice"][data-kind="error"]')).to_contain_text(
        "an upload needs a connection"
    )
    await expect(page.get_by_test_id("pending-count")).to_have_attribute("data-count", "0")  # not queued
    await page.context.set_offline(False)
    await live(page)
    await page.get_by_test_id("document-upload-send").click()  # the file is still chosen: the same press, online
    await expect(document(page, "pixel.png")).to_have_count(1)
    assert [d["filename"] for d in await documents(api, lead)] == ["pixel.png"]


async def test_a_file_too_large_is_refused_in_words(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Big File"))["id"]
    page = await pages.open(org)
    await live(page)
    await open_lead(page, lead, "Big File")
    await upload(page, "huge.txt", "text/plain", b"x" * (10 * 1024 * 1024 + 1))  # DOCUMENT_MAX_BYTES: 10 MiB
    refused = page.locator('[data-testid="notice"][data-kind="error"]')
    await expect(refused).to_contain_text("huge.txt was not attached: it is too large (a document may hold at most")
    assert await documents(api, lead) == []
