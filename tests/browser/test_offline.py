"""Presses survive the network: kept in IndexedDB, replayed in order with their own keys, applied once."""

from playwright.async_api import Page, Route, expect

from tests.browser.conftest import Pages, live, row, token_for
from tests.conftest import Api
from tests.support.sandbox import Sandbox
from tests.support.stack import eventually


async def history(api: Api, lead_id: str) -> list[dict]:
    status, _, body = await api.get(f"/api/leads/{lead_id}/history")
    assert status == 200
    return body["history"]


async def pending(page: Page, count: int) -> None:
    await expect(page.get_by_test_id("pending-count")).to_have_attribute("data-count", str(count))


async def test_the_indicator_says_offline_within_five_seconds_and_live_again(pages: Pages, org: str) -> None:
    page = await pages.open(org)
    await live(page)
    await page.context.set_offline(True)
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "offline", timeout=5000)
    await page.context.set_offline(False)
    await live(page)


async def test_offline_presses_survive_a_reload_and_are_applied_once_in_order(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Offline Lead"))["id"]
    page = await pages.open(org)
    await live(page)
    await expect(row(page, lead)).to_be_visible()  # loaded before the network goes
    await page.wait_for_function("navigator.serviceWorker.controller !== null")  # the page opens offline too
    await page.context.set_offline(True)
    for status in ("contacted", "qualified", "proposal"):
        await row(page, lead).get_by_test_id("status-control").select_option(status)
    await pending(page, 3)
    await expect(page.locator('[data-testid="notice"][data-kind="pending"]').first).to_be_visible()
    await page.reload()
    await pending(page, 3)
    await expect(row(page, lead)).to_have_attribute("data-pending", "3")
    assert await history(api, lead) == []
    await page.context.set_offline(False)
    await pending(page, 0)
    moves = [(h["from"], h["to"]) for h in reversed(await history(api, lead))]
    assert moves == [("new", "contacted"), ("contacted", "qualified"), ("qualified", "proposal")]
    await expect(row(page, lead)).to_have_attribute("data-status", "proposal")


async def test_a_replay_refused_meanwhile_is_shown_failed_and_the_next_still_goes(
    pages: Pages, api: Api, org: str
) -> None:
    moved = (await api.create_lead("Moved Meanwhile"))["id"]
    other = (await api.create_lead("Other Lead"))["id"]
    page = await pages.open(org)
    await live(page)
    await expect(row(page, other)).to_be_visible()  # loaded before the network goes
    await page.context.set_offline(True)
    await row(page, moved).get_by_test_id("status-control").select_option("contacted")
    await row(page, other).get_by_test_id("status-control").select_option("qualified")
    await pending(page, 2)
    assert (await api.post("/api/leads/update-status", {"leadId": moved, "status": "won"}))[0] == 200
    await page.context.set_offline(False)
    await pending(page, 0)
    refused = page.locator('[data-testid="notice"][data-kind="error"]').filter(has_text="Moved Meanwhile")
    await expect(refused).to_have_count(1)
    await expect(refused).to_contain_text("Someone moved Moved Meanwhile to won first")
    await expect(refused).not_to_contain_text("null")
    errors = await page.locator('[data-testid="notice"][data-kind="error"]').all_inner_texts()
    assert len(errors) == 1, errors  # nothing else went wrong
    assert [h["to"] for h in await history(api, moved)] == ["won"]
    assert [h["to"] for h in await history(api, other)] == ["qualified"]


class LoseAnswers:
    """Lets the first request reach the gateway and cuts its answer; then blocks (or passes) the next ones."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.blocked = True

    async def __call__(self, route: Route) -> None:
        if route.request.method != "POST":
            return await route.continue_()
        self.keys.append(await route.request.header_value("idempotency-key") or "")
        if len(self.keys) == 1:
            await route.fetch()  # the gateway has it, and answers...
            return await route.abort("connectionreset")  # ...but the page never hears it
        if self.blocked:
            return await route.abort("internetdisconnected")
        await route.continue_()


async def test_a_press_whose_answer_is_lost_is_retried_with_its_key_once(pages: Pages, api: Api, org: str) -> None:
    lead = (await api.create_lead("Lost Answer"))["id"]
    page = await pages.open(org, service_workers="block")
    cut = LoseAnswers()
    cut.blocked = False
    await page.route("**/api/leads/update-status", cut)
    await live(page)
    await row(page, lead).get_by_test_id("status-control").select_option("contacted")
    await expect(page.locator('[data-testid="notice"][data-kind="success"]').first).to_be_visible()
    await pending(page, 0)
    assert len(cut.keys) >= 2 and len(set(cut.keys)) == 1, cut.keys
    assert [(h["from"], h["to"]) for h in await history(api, lead)] == [("new", "contacted")]


async def test_a_lost_answer_then_a_reload_still_sends_one_sms(
    pages: Pages, api: Api, org: str, sandbox: Sandbox
) -> None:
    phone = "+14155550177"
    lead = (await api.create_lead("Reload Texted", phone))["id"]
    page = await pages.open(org, service_workers="block")
    cut = LoseAnswers()
    await page.route("**/api/leads/send-sms", cut)
    await live(page)
    await row(page, lead).get_by_role("button", name="open Reload Texted").click()
    await page.get_by_test_id("sms-message").fill("Only once, please")
    await page.get_by_test_id("sms-send").click()
    await eventually(lambda: len(cut.keys) >= 1, 20, what="the SMS to reach the gateway")
    await eventually(lambda: sandbox.messages_to(phone), 20, what="the SMS to be sent")
    await page.reload()  # the answer was lost: only IndexedDB remembers the press, and its key
    await pending(page, 1)
    cut.blocked = False
    await pending(page, 0)
    assert len(set(cut.keys)) == 1 and len(cut.keys) >= 2, cut.keys
    assert len(await sandbox.messages_to(phone)) == 1
    _, _, sms = await api.get(f"/api/leads/{lead}/sms-history")
    assert len(sms["sms_messages"]) == 1


async def test_presses_kept_offline_survive_a_browser_restart(
    playwright,
    api: Api,
    org: str,  # type: ignore[no-untyped-def]
    stack,
    tmp_path,
) -> None:
    """The whole browser closed while two presses wait, started again on the same profile: each applied once."""
    from tests.browser.conftest import chromium_path, token_for

    lead = (await api.create_lead("Restart Lead"))["id"]
    profile = tmp_path / "profile"

    async def start():  # type: ignore[no-untyped-def]
        context = await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=chromium_path(), viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(20_000)
        page = context.pages[0] if context.pages else await context.new_page()
        await page.add_init_script(
            f"localStorage.getItem('crm.token') || localStorage.setItem('crm.token', {token_for(org)!r})"
        )
        await page.goto(stack.url + "/")
        return context, page

    context, page = await start()
    await live(page)
    await expect(row(page, lead)).to_be_visible()
    await page.context.set_offline(True)
    for status in ("contacted", "qualified"):
        await row(page, lead).get_by_test_id("status-control").select_option(status)
    await pending(page, 2)
    await context.close()  # the browser goes away with the presses undelivered
    assert await history(api, lead) == []
    context, page = await start()  # online again: the kept presses go by themselves
    try:
        await pending(page, 0)

        async def both_applied() -> bool:
            return len(await history(api, lead)) >= 2

        await eventually(both_applied, 20, what="the two replayed presses")
        moves = [(h["from"], h["to"]) for h in reversed(await history(api, lead))]
        assert moves == [("new", "contacted"), ("contacted", "qualified")]
    finally:
        await context.close()


OLD_CONSOLE_DB = """async ([rows]) => {
  const db = await new Promise((resolve, reject) => {
    const req = indexedDB.open("crm-console", 1);
    req.onupgradeneeded = () => req.result.createObjectStore("presses", { keyPath: "seq", autoIncrement: true });
    req.onsuccess = () => resolve(req.result); req.onerror = () => reject(req.error);
  });
  const tx = db.transaction("presses", "readwrite");
  for (const row of rows) tx.objectStore("presses").put(row);
  await new Promise((resolve) => { tx.oncomplete = resolve; });
  db.close();
}"""


async def test_presses_kept_by_the_console_before_the_sdk_are_sent_once_with_their_keys(
    pages: Pages, api: Api, org: str
) -> None:
    """The console's own IndexedDB ("crm-console") before it ran on the SDK: its presses move to the SDK's."""
    lead = (await api.create_lead("Kept Before"))["id"]
    keys = ["6f1c2d3e-0000-4000-8000-000000000001", "6f1c2d3e-0000-4000-8000-000000000002"]

    def old_press(key: str, status: str, principal: str = f"{org}\nagent-1") -> dict:
        return {
            "principal": principal,
            "key": key,
            "button": "update_lead_status",
            "method": "POST",
            "path": "/api/leads/update-status",
            "body": {"leadId": lead, "status": status},
            "leadIds": [lead],
            "label": f"Moving Kept Before to {status}",
            "state": "pending",
            "createdAt": "2026-01-01T00:00:00Z",
        }

    page = await pages.open(service_workers="block")  # signed out: nothing opens the old database yet
    sent: list[str] = []

    async def record(route: Route) -> None:
        sent.append(await route.request.header_value("idempotency-key") or "")
        await route.continue_()

    await page.route("**/api/leads/update-status", record)
    rows = [
        old_press(keys[0], "contacted"),
        old_press(keys[1], "qualified"),
        old_press("other", "won", "org-x\nagent-1"),
    ]
    await page.evaluate(OLD_CONSOLE_DB, [rows])
    await page.evaluate(f"localStorage.setItem('crm.token', {token_for(org)!r})")
    await page.reload()
    await live(page)

    async def both_applied() -> bool:
        return len(await history(api, lead)) >= 2

    await eventually(both_applied, 20, what="the two presses the old console kept")
    await pending(page, 0)
    assert [(h["from"], h["to"]) for h in reversed(await history(api, lead))] == [
        ("new", "contacted"),
        ("contacted", "qualified"),
    ]
    assert sorted(set(sent)) == keys, sent
    left = await page.evaluate("""() => new Promise((resolve) => {
      const req = indexedDB.open("crm-console");
      req.onsuccess = () => {
        const all = req.result.transaction("presses").objectStore("presses").getAll();
        all.onsuccess = () => resolve(all.result.map((r) => r.key));
      };
    })""")
    assert left == ["other"]  # another identity's, moved at its own sign-in
