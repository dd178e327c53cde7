"""The console builds its presses from GET /api/buttons, keeps the table for offline use, and keys its
words by the table's button and problem names (services/gateway/static/table.js, words.js)."""

import json

from playwright.async_api import Route, expect

from tests.browser.conftest import Pages, live, row
from tests.conftest import Api
from tests.support.stack import eventually


async def history(api: Api, lead_id: str) -> list[dict]:
    status, _, body = await api.get(f"/api/leads/{lead_id}/history")
    assert status == 200
    return body["history"]  # type: ignore[index]


async def test_the_words_are_keyed_by_the_tables_buttons_and_refusals(pages: Pages, org: str) -> None:
    page = await pages.open(org)
    await live(page)
    got = await page.evaluate("""async () => {
      const words = await import("/static/words.js");
      const auth = { Authorization: "Bearer " + localStorage.getItem("crm.token") };
      const table = await (await fetch("/api/buttons", { headers: auth })).json();
      const refused = Object.fromEntries(
        Object.entries(words.REFUSED).map(([button, byName]) => [button, Object.keys(byName)]));
      return { done: Object.keys(words.DONE), refused, table };
    }""")
    table = got["table"]
    names = {p["name"]: type_ for type_, p in table["problems"].items()}
    assert set(got["done"]) - {"any"} <= set(table["buttons"])
    for button, words in got["refused"].items():
        for name in words:
            assert name in names, f"words for {name}, which is no problem of shared/problems.py"
            if button != "any":
                assert names[name] in table["buttons"][button]["refusals"], f"{button} never answers {name}"


async def test_a_press_goes_where_the_table_says(pages: Pages, api: Api, org: str) -> None:
    """The table served is the page's only source of a button's path: change it, and the press follows."""
    lead = (await api.create_lead("Table Driven"))["id"]
    page = await pages.open(org, service_workers="block")
    seen: list[str] = []

    async def table_with_a_marked_path(route: Route) -> None:
        response = await route.fetch(headers={**route.request.headers, "If-None-Match": ""})
        body = await response.json()
        body["buttons"]["update_lead_status"]["path"] += "?from=the-table"
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "etag")}
        await route.fulfill(response=response, body=json.dumps(body), headers={**headers, "ETag": '"marked"'})

    async def record(route: Route) -> None:
        seen.append(route.request.url)
        await route.continue_()

    await page.route("**/api/buttons", table_with_a_marked_path)
    await page.route("**/api/leads/update-status*", record)
    await page.evaluate("localStorage.removeItem('crm.buttons')")
    await page.reload()
    await live(page)
    await row(page, lead).get_by_test_id("status-control").select_option("contacted")
    await expect(page.locator('[data-testid="notice"][data-kind="success"]').first).to_be_visible()
    assert seen and all(url.endswith("/api/leads/update-status?from=the-table") for url in seen), seen
    assert [h["to"] for h in await history(api, lead)] == ["contacted"]


async def test_a_press_made_after_an_offline_reload_is_built_from_the_kept_table(
    pages: Pages, api: Api, org: str
) -> None:
    lead = (await api.create_lead("Kept Table"))["id"]
    page = await pages.open(org)
    await live(page)
    await expect(row(page, lead)).to_be_visible()
    await page.wait_for_function("navigator.serviceWorker.controller !== null && !!localStorage.getItem('crm.buttons')")
    await page.context.set_offline(True)
    await page.reload()  # the shell from the service worker, the table from localStorage: no request reaches it
    await row(page, lead).get_by_test_id("status-control").select_option("contacted")
    await expect(page.get_by_test_id("pending-count")).to_have_attribute("data-count", "1")
    await page.context.set_offline(False)
    await expect(page.get_by_test_id("pending-count")).to_have_attribute("data-count", "0")

    async def moved() -> bool:
        return [h["to"] for h in await history(api, lead)] == ["contacted"]

    await eventually(moved, 20, what="the press kept offline")
