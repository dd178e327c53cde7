"""The SMS provider adapter, with the official twilio client, against the Twilio sandbox started in-process."""

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from twilio.request_validator import RequestValidator

from services.sms import provider as provider_module
from services.sms.provider import (
    OptedOut,
    PermanentFailure,
    Provider,
    ProviderSettings,
    Sent,
    TransientFailure,
)
from services.twilio_sandbox.app import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    SandboxSettings,
    init_app,
)
from tests.support.stack import eventually

SID, TOKEN = DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
MESSAGES = f"/2010-04-01/Accounts/{SID}/Messages.json"
AUTH = {"Authorization": aiohttp.encode_basic_auth(SID, TOKEN)}


@dataclass
class Receiver:
    """A webhook endpoint: remembers every POST (its full URL, form and headers)."""

    server: TestServer
    received: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def sandbox() -> AsyncIterator[TestServer]:
    # Explicit: nothing from the environment (make exports SANDBOX_INBOUND_URL for `make run`).
    settings = SandboxSettings(
        TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, SANDBOX_CALLBACK_DELAY=0.01, SANDBOX_INBOUND_URL=None
    )
    server = TestServer(init_app(settings), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def control(sandbox: TestServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=sandbox.make_url("/")) as session:
        yield session


def settings_for(sandbox: TestServer, **overrides: object) -> ProviderSettings:
    values = dict(
        twilio_account_sid=SID, twilio_auth_token=TOKEN, twilio_base_url=str(sandbox.make_url("")), twilio_timeout=2.0
    )
    return ProviderSettings(**(values | overrides))  # type: ignore[arg-type]


@pytest.fixture
async def provider(sandbox: TestServer) -> AsyncIterator[Provider]:
    opened = Provider(settings_for(sandbox))
    yield opened
    await opened.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = web.Application()
    receiver = Receiver(TestServer(app, host="127.0.0.1"))

    async def remember(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        receiver.received.append((str(request.url), form, dict(request.headers)))
        return web.Response(status=204)

    app.router.add_post("/{tail:.*}", remember)
    await receiver.server.start_server()
    yield receiver
    await receiver.server.close()


async def recorded(control: aiohttp.ClientSession) -> dict:
    async with control.get("_sandbox/messages") as answer:
        return await answer.json()


async def behave(control: aiohttp.ClientSession, **behaviour: object) -> None:
    async with control.post("_sandbox/behaviour", json=behaviour) as answer:
        assert answer.status == 200, await answer.text()


async def test_a_send_is_accepted_and_recorded(provider: Provider, control: aiohttp.ClientSession) -> None:
    sent = await provider.send("+14155550100", "Your appointment is confirmed", None)
    assert sent == Sent(sid=sent.sid, status="queued", segments=1)
    assert sent.sid.startswith("SM") and len(sent.sid) == 34
    seen = await recorded(control)
    assert seen["calls"] == 1
    [message] = seen["messages"]
    assert (message["sid"], message["to"], message["from"], message["body"]) == (
        sent.sid,
        "+14155550100",
        "+15005550006",
        "Your appointment is confirmed",
    )


async def test_the_message_resource_looks_like_twilios(provider: Provider, sandbox: TestServer) -> None:
    sent = await provider.send("+14155550100", "ж" * 71, None)
    async with (
        aiohttp.ClientSession() as http,
        http.get(sandbox.make_url(f"/2010-04-01/Accounts/{SID}/Messages/{sent.sid}.json"), headers=AUTH) as answer,
    ):
        assert answer.status == 200
        resource = await answer.json()
    assert resource["num_segments"] == "2" and sent.segments == 2
    assert (resource["direction"], resource["api_version"], resource["account_sid"]) == (
        "outbound-api",
        "2010-04-01",
        SID,
    )
    assert resource["price"] is None and resource["error_code"] is None and resource["error_message"] is None
    assert resource["uri"] == f"/2010-04-01/Accounts/{SID}/Messages/{sent.sid}.json"
    assert resource["date_created"].endswith(" +0000")  # RFC 2822, in UTC
    assert datetime.strptime(resource["date_sent"], "%a, %d %b %Y %H:%M:%S %z") <= datetime.now(UTC)
    assert set(resource["subresource_uris"]) >= {"media"}


@pytest.mark.parametrize(
    ("to", "error", "code"),
    [
        ("+15005550001", PermanentFailure, 21211),
        ("+15005550002", PermanentFailure, 21612),
        ("+15005550003", PermanentFailure, 21408),
        ("+15005550004", OptedOut, 21610),
        ("+15005550009", PermanentFailure, 21614),
        ("not-a-number", PermanentFailure, 21211),
    ],
)
async def test_test_numbers_map_to_their_exception_and_code(
    provider: Provider, control: aiohttp.ClientSession, to: str, error: type, code: int
) -> None:
    with pytest.raises(PermanentFailure) as refused:
        await provider.send(to, "hello", None)
    assert type(refused.value) is error
    assert refused.value.code == code
    seen = await recorded(control)
    assert (seen["calls"], seen["messages"]) == (1, [])


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, 20503)])
async def test_throttling_and_server_errors_are_transient_and_not_retried(
    provider: Provider, control: aiohttp.ClientSession, status: int, code: int
) -> None:
    await behave(control, mode="error", status=status, count=1)
    with pytest.raises(TransientFailure) as failed:
        await provider.send("+14155550100", "hello", None)
    assert failed.value.code == code
    assert (await recorded(control))["calls"] == 1  # the client did not retry the POST
    await provider.send("+14155550100", "hello", None)  # count=1: the next call is answered normally
    assert len((await recorded(control))["messages"]) == 1


async def test_a_failing_list_is_transient(provider: Provider, control: aiohttp.ClientSession) -> None:
    await behave(control, mode="error", status=503)
    with pytest.raises(TransientFailure):
        await provider.find_sent("+14155550100", datetime.now(UTC), "hello")


async def test_a_slow_answer_is_a_transient_failure_and_find_sent_sees_the_message(
    sandbox: TestServer, control: aiohttp.ClientSession
) -> None:
    since = datetime.now(UTC)
    slow = Provider(settings_for(sandbox, twilio_timeout=0.3))
    try:
        await behave(control, mode="slow", delay=3.0, count=1)
        started = time.monotonic()
        with pytest.raises(TransientFailure, match=r"within 0\.3s"):
            await slow.send("+14155550111", "did it go?", None)
        assert time.monotonic() - started < 3.0  # gave up before the answer came (a loaded machine takes ~1 s)
        # Twilio may have accepted what the client gave up on: that is what find_sent is for.
        assert await slow.find_sent("+14155550111", since, "did it go?") == []
        sent = await eventually(lambda: recorded_messages(control), timeout=10, what="the slow send to be accepted")
        assert await slow.find_sent("+14155550111", since, "did it go?") == [sent[0]["sid"]]
    finally:
        await slow.close()


async def recorded_messages(control: aiohttp.ClientSession) -> list[dict]:
    return (await recorded(control))["messages"]


async def test_wrong_credentials(sandbox: TestServer, control: aiohttp.ClientSession) -> None:
    wrong = Provider(settings_for(sandbox, twilio_auth_token="not-the-token"))
    try:
        with pytest.raises(TransientFailure) as refused:
            await wrong.send("+14155550100", "hello", None)
        assert refused.value.code == 20003
        with pytest.raises(TransientFailure) as listing:
            await wrong.find_sent("+14155550100", datetime.now(UTC), "hello")
        assert listing.value.code == 20003
    finally:
        await wrong.close()
    assert (await recorded(control))["messages"] == []


async def test_an_unreachable_provider_is_transient(sandbox: TestServer) -> None:
    gone = Provider(settings_for(sandbox, twilio_base_url="http://127.0.0.1:9"))  # discard port: refused
    try:
        with pytest.raises(TransientFailure, match="cannot reach"):
            await gone.send("+14155550100", "hello", None)
    finally:
        await gone.close()


async def test_find_sent_finds_only_that_body_to_that_number_since_then(provider: Provider) -> None:
    since = datetime.now(UTC)
    sent = await provider.send("+14155550100", "Reminder: tomorrow 10:00", None)
    await provider.send("+14155550100", "Another message", None)
    await provider.send("+14155550199", "Reminder: tomorrow 10:00", None)
    assert await provider.find_sent("+14155550100", since, "Reminder: tomorrow 10:00") == [sent.sid]
    assert await provider.find_sent("+14155550100", since, "Reminder: tomorrow 11:00") == []
    assert await provider.find_sent("+14155550188", since, "Reminder: tomorrow 10:00") == []
    assert await provider.find_sent("+14155550100", since + timedelta(minutes=5), "Reminder: tomorrow 10:00") == []
    assert (
        await provider.find_sent(
            "+14155550100", since - timedelta(minutes=5), "Reminder: tomorrow 10:00", until=since - timedelta(minutes=1)
        )
        == []
    )
    # Any time zone.
    in_sydney = since.astimezone(timezone(timedelta(hours=10)))
    assert await provider.find_sent("+14155550100", in_sydney, "Reminder: tomorrow 10:00") == [sent.sid]
    later_in_sydney = in_sydney + timedelta(minutes=5)
    assert await provider.find_sent("+14155550100", later_in_sydney, "Reminder: tomorrow 10:00") == []
    with pytest.raises(ValueError):
        await provider.find_sent("+14155550100", datetime.now(), "Reminder: tomorrow 10:00")


async def test_find_sent_lists_the_matches_oldest_first(provider: Provider) -> None:
    since = datetime.now(UTC)
    first = await provider.send("+14155550100", "same", None)
    second = await provider.send("+14155550100", "same", None)
    assert await provider.find_sent("+14155550100", since, "same") == [first.sid, second.sid]


async def test_find_sent_reads_the_pages_back_to_the_window(
    provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provider_module, "PAGE_SIZE", 2)
    since = datetime.now(UTC)
    wanted = await provider.send("+14155550100", "the first", None)
    for i in range(4):  # newer messages to the same number: "the first" is on the third page
        await provider.send("+14155550100", f"later {i}", None)
    assert await provider.find_sent("+14155550100", since, "the first") == [wanted.sid]


async def test_a_message_kept_in_the_queue_has_no_date_sent_and_find_sent_still_finds_it(
    provider: Provider, control: aiohttp.ClientSession
) -> None:
    since = datetime.now(UTC)
    await behave(control, queued_for=1.0)
    sent = await provider.send("+14155550100", "waiting", None)
    queued = await provider.client.messages(sent.sid).fetch_async()
    assert (queued.status, queued.date_sent) == ("queued", None) and queued.date_created is not None
    # Twilio's DateSent filter does not list it yet; find_sent goes by date_created.
    assert await provider.client.messages.list_async(to="+14155550100", date_sent_after=since) == []
    assert await provider.find_sent("+14155550100", since, "waiting") == [sent.sid]
    await eventually(lambda: has_status(provider, sent.sid, "sent", "delivered"), timeout=5, what="sent at last")
    done = await provider.client.messages(sent.sid).fetch_async()
    assert done.date_sent is not None and done.date_sent >= since.replace(microsecond=0)
    assert [m.sid for m in await provider.client.messages.list_async(to="+14155550100", date_sent_after=since)] == [
        sent.sid
    ]


async def has_status(provider: Provider, sid: str, *statuses: str) -> bool:
    return (await provider.client.messages(sid).fetch_async()).status in statuses


async def test_smart_encoding_rewrites_the_stored_body_and_find_sent_still_finds_it(
    provider: Provider, control: aiohttp.ClientSession
) -> None:
    since = datetime.now(UTC)
    await behave(control, smart_encoding=True)
    written = "“Hi” — it’s 10:00…\u00a0‘ok’ – see you"
    sent = await provider.send("+14155550100", written, None)
    kept = await provider.send("+14155550100", "“Hi” 🙂", None)  # an emoji stays: the body cannot fit GSM-7
    bodies = {m["sid"]: m["body"] for m in (await recorded(control))["messages"]}
    assert bodies == {sent.sid: "\"Hi\" - it's 10:00... 'ok' - see you", kept.sid: "“Hi” 🙂"}
    assert await provider.find_sent("+14155550100", since, written) == [sent.sid]
    assert await provider.find_sent("+14155550100", since, "“Hi” 🙂") == [kept.sid]
    assert await provider.find_sent("+14155550100", since, "“Hi” — it’s 11:00…") == []


@pytest.mark.parametrize(
    ("smart_encoding", "field", "stored"),
    [(False, None, "“a” — b"), (True, None, '"a" - b'), (True, "false", "“a” — b"), (False, "true", '"a" - b')],
)
async def test_a_sends_smart_encoded_field_overrides_the_sandboxs_setting(
    control: aiohttp.ClientSession, smart_encoding: bool, field: str | None, stored: str
) -> None:
    await behave(control, smart_encoding=smart_encoding)
    form = {"To": "+14155550100", "From": "+15005550006", "Body": "“a” — b"}
    async with control.post(
        MESSAGES.lstrip("/"), data=form | ({"SmartEncoded": field} if field else {}), headers=AUTH
    ) as answer:
        assert answer.status == 201
        assert (await answer.json())["body"] == stored


async def test_find_sent_sees_only_our_sender(sandbox: TestServer, provider: Provider) -> None:
    since = datetime.now(UTC)
    service = "MG" + "1" * 32
    through_service = Provider(settings_for(sandbox, twilio_messaging_service_sid=service))
    try:
        by_service = await through_service.send("+14155550100", "same", None)
        by_number = await provider.send("+14155550100", "same", None)
        assert await through_service.find_sent("+14155550100", since, "same") == [by_service.sid]
    finally:
        await through_service.close()
    assert await provider.find_sent("+14155550100", since, "same") == [by_number.sid]


async def test_the_sandbox_filters_and_pages_like_twilio(provider: Provider, sandbox: TestServer) -> None:
    sids = [(await provider.send("+14155550100", f"n{i}", None)).sid for i in range(5)]
    await provider.send("+14155550101", "other", None)
    client = provider.client  # the official client, as the adapter configured it
    listed = await client.messages.list_async(to="+14155550100", page_size=2)  # three pages
    assert [m.sid for m in listed] == sids[::-1]  # newest first
    # Their own day (not the clock's now, which may have passed midnight since); a minute after the last.
    today, later = listed[0].date_sent.strftime("%Y-%m-%d"), listed[0].date_sent + timedelta(minutes=1)
    async with aiohttp.ClientSession(base_url=sandbox.make_url("/"), headers=AUTH) as http:
        for query, expected in [
            ({"DateSent>": today}, 6),
            ({"DateSent<": today}, 6),
            ({"DateSent": today}, 6),
            ({"DateSent>": later.strftime("%Y-%m-%dT%H:%M:%SZ")}, 0),
            ({"From": "+15005550006", "To": "+14155550101"}, 1),
        ]:
            async with http.get(MESSAGES.lstrip("/"), params=query) as answer:
                page = await answer.json()
            assert len(page["messages"]) == expected, query
        async with http.get(MESSAGES.lstrip("/"), params={"DateSent>": "yesterday"}) as answer:
            assert answer.status == 400


async def test_a_messaging_service_sends_without_a_from_number(
    sandbox: TestServer, control: aiohttp.ClientSession
) -> None:
    service = "MG" + "0" * 32
    through_service = Provider(settings_for(sandbox, twilio_messaging_service_sid=service))
    try:
        sent = await through_service.send("+14155550100", "a" * 161, None)
    finally:
        await through_service.close()
    assert (sent.status, sent.segments) == ("accepted", 2)  # Twilio says 0 segments until it picks a sender
    [message] = (await recorded(control))["messages"]
    assert (message["from"], message["messaging_service_sid"]) == (None, service)


async def test_edge_and_region_settings_cannot_redirect_the_sandbox(
    sandbox: TestServer, control: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    opened = Provider(settings_for(sandbox))
    try:
        await opened.send("+14155550100", "hello", None)
        assert opened.client.edge is None and opened.client.region is None
    finally:
        await opened.close()
    assert len((await recorded(control))["messages"]) == 1


async def test_status_callbacks_arrive_signed_and_the_status_follows(provider: Provider, receiver: Receiver) -> None:
    callback = receiver.url("/sms/status?lead=42")
    sent = await provider.send("+14155550100", "hello", callback)
    await eventually(lambda: len(receiver.received) == 2, timeout=5, what="two status callbacks")
    validator = RequestValidator(TOKEN)
    for (url, form, headers), status in zip(receiver.received, ["sent", "delivered"], strict=True):
        assert url == callback
        assert (form["MessageSid"], form["SmsSid"], form["MessageStatus"], form["SmsStatus"]) == (
            sent.sid,
            sent.sid,
            status,
            status,
        )
        assert (form["AccountSid"], form["From"], form["To"], form["ApiVersion"]) == (
            SID,
            "+15005550006",
            "+14155550100",
            "2010-04-01",
        )
        assert validator.validate(url, form, headers["X-Twilio-Signature"])
        assert not validator.validate(url, {**form, "MessageStatus": "failed"}, headers["X-Twilio-Signature"])
        assert not validator.validate(url.replace("lead=42", "lead=43"), form, headers["X-Twilio-Signature"])
        assert not RequestValidator("another-token").validate(url, form, headers["X-Twilio-Signature"])
    tokens = {headers["I-Twilio-Idempotency-Token"] for _, _, headers in receiver.received}
    assert len(tokens) == 2
    fetched = await provider.client.messages(sent.sid).fetch_async()
    assert fetched.status == "delivered"


async def test_an_undelivered_message_reports_its_error_code(
    provider: Provider, receiver: Receiver, control: aiohttp.ClientSession
) -> None:
    await behave(control, delivery="undelivered")
    await provider.send("+14155550100", "hello", receiver.url("/status"))
    await eventually(lambda: len(receiver.received) == 2, timeout=5, what="two status callbacks")
    last = receiver.received[-1][1]
    assert (last["MessageStatus"], last["ErrorCode"]) == ("undelivered", "30003")
    assert "ErrorCode" not in receiver.received[0][1]


async def test_inbound_messages_are_posted_signed_to_the_inbound_url_only(receiver: Receiver) -> None:
    url = receiver.url("/sms/inbound")
    settings = SandboxSettings(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, SANDBOX_INBOUND_URL=url)
    async with (
        TestServer(init_app(settings), host="127.0.0.1") as server,
        aiohttp.ClientSession(str(server.make_url("/"))) as control,
    ):
        async with control.post(
            "_sandbox/inbound", json={"from": "+14155550100", "to": "+15005550006", "body": "STOP"}
        ) as answer:
            assert (answer.status, (await answer.json())["status"]) == (200, 204)
        # A URL from the request is never posted to: the sandbox would sign forged webhooks for anyone.
        async with control.post(
            "_sandbox/inbound", json={"from": "+1", "to": "+1", "body": "x", "url": receiver.url("/elsewhere")}
        ) as answer:
            assert answer.status == 400 and "SANDBOX_INBOUND_URL" in (await answer.json())["error"]
    [(_, form, headers)] = receiver.received
    assert (form["From"], form["To"], form["Body"], form["NumMedia"], form["AccountSid"]) == (
        "+14155550100",
        "+15005550006",
        "STOP",
        "0",
        SID,
    )
    assert form["MessageSid"].startswith("SM")
    assert RequestValidator(TOKEN).validate(url, form, headers["X-Twilio-Signature"])


async def test_without_an_inbound_url_nothing_is_posted(control: aiohttp.ClientSession) -> None:
    async with control.post("_sandbox/inbound", json={"from": "+1", "to": "+1", "body": "x"}) as answer:
        assert answer.status == 409  # no SANDBOX_INBOUND_URL in this sandbox


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": "+15005550006", "Body": "hi"}, 21604),
        ({"To": "+14155550100", "From": "+15005550006"}, 21602),
        ({"To": "+14155550100", "Body": "hi"}, 21603),
        ({"To": "+14155550100", "From": "+15005550006", "Body": "x" * 1601}, 21617),
        ({"To": "+14155550100", "From": "+15005550007", "Body": "hi"}, 21606),
        ({"To": "+14155550100", "From": "+15005550006", "Body": "hi", "StatusCallback": "nowhere"}, 21609),
    ],
)
async def test_invalid_requests_get_twilios_error_bodies(control: aiohttp.ClientSession, form: dict, code: int) -> None:
    async with control.post(MESSAGES.lstrip("/"), data=form, headers=AUTH) as answer:
        assert answer.status == 400
        body = await answer.json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert (body["code"], body["status"]) == (code, 400)
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


async def test_missing_or_wrong_credentials_get_20003(control: aiohttp.ClientSession) -> None:
    wrong = {"Authorization": aiohttp.encode_basic_auth(SID, "nope")}
    for headers in ({}, wrong):
        async with control.get(MESSAGES.lstrip("/"), headers=headers) as answer:
            assert answer.status == 401
            assert await answer.json() == {
                "code": 20003,
                "message": "Authenticate",
                "status": 401,
                "more_info": "https://www.twilio.com/docs/errors/20003",
            }


async def test_the_control_api(control: aiohttp.ClientSession, provider: Provider) -> None:
    for bad in (
        {"mode": "angry"},
        {"mode": "error", "status": 404},
        {"mode": "slow", "delay": -1},
        {"count": 0},
        {"queued_for": -1},
        {"queued_for": "soon"},
        {"smart_encoding": "yes"},
    ):
        async with control.post("_sandbox/behaviour", json=bad) as answer:
            assert answer.status == 400, bad
    await behave(control, mode="error", status=500)  # no count: until reset
    for _ in range(2):
        with pytest.raises(TransientFailure):
            await provider.send("+14155550100", "hello", None)
    async with control.post("_sandbox/reset") as answer:
        assert answer.status == 200
    assert await recorded(control) == {"calls": 0, "messages": []}
    await provider.send("+14155550100", "hello", None)
    assert (await recorded(control))["calls"] == 1


def test_a_provider_can_be_built_outside_the_event_loop() -> None:
    Provider(ProviderSettings())  # the service builds it before asyncio.run; the client comes on first use


def test_real_twilio_needs_real_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_BASE_URL", "TWILIO_MESSAGING_SERVICE_SID"):
        monkeypatch.delenv(name, raising=False)
    defaults = ProviderSettings()
    assert (defaults.twilio_account_sid, defaults.twilio_auth_token.get_secret_value()) == (
        SID,
        TOKEN,
    )  # the sandbox's defaults
    assert (defaults.twilio_base_url, defaults.twilio_from_number) == ("http://127.0.0.1:8089", "+15005550006")
    monkeypatch.setenv("TWILIO_BASE_URL", "")
    with pytest.raises(ValueError, match="TWILIO_ACCOUNT_SID"):
        ProviderSettings()
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    with pytest.raises(ValueError, match="TWILIO_AUTH_TOKEN"):
        ProviderSettings()
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "a-real-token")
    assert ProviderSettings().twilio_base_url == ""
