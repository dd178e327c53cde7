"""The Python client's pure parts: retry decisions, backoff, the resume bookkeeping, the offline
store and its scopes, the SMS breaker's rules, the requests each button makes."""

import asyncio
import sqlite3
from types import SimpleNamespace

import crm_client
import pytest
from crm_client import buttons
from crm_client.breaker import SmsBreaker
from crm_client.http import RETRY_STATUSES, HonourRetryAfter, Retryable, classify, retry_after
from crm_client.live import Resume, _Stream, hello
from crm_client.offline import SCHEMA, Store, scope_of
from crm_client.scope import Scope, origin

from services.gateway.auth import issue
from tests.support.stack import TEST_SECRET


@pytest.mark.parametrize(
    ("status", "headers", "retried"),
    [
        (429, {}, True),
        (502, {}, True),
        (503, {"Retry-After": "1"}, True),
        (504, {}, True),
        (500, {}, True),
        (409, {"Retry-After": "2"}, False),  # the gateway never sends it: a 409 is a refusal
        (409, {}, False),
        (404, {}, False),
        (422, {}, False),
        (400, {}, False),
        (401, {}, False),
        (200, {}, False),
        (202, {}, False),
        (501, {}, False),
    ],
)
def test_what_is_retried(status: int, headers: dict, retried: bool) -> None:
    if retried:
        with pytest.raises(Retryable):
            classify(status, headers, {})
    else:
        classify(status, headers, {})


def test_the_retry_table_is_the_javascript_cores() -> None:
    assert {429, 500, 502, 503, 504} == RETRY_STATUSES


def test_a_parked_command_is_final_not_retried() -> None:
    classify(503, {}, {"type": "/problems/command-parked", "status": 503})
    classify(500, {}, {"type": "/problems/content-missing", "status": 500})  # a 500 of the table: final too
    with pytest.raises(Retryable):  # but "try again" is retried
        classify(503, {"Retry-After": "1"}, {"type": "/problems/unavailable", "status": 503})
    with pytest.raises(Retryable):  # the framework's own 500
        classify(500, {}, {"type": "about:blank", "status": 500, "title": "Internal Server Error"})


def test_retry_after_is_seconds_or_a_date() -> None:
    assert retry_after("3") == 3.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: now
    assert retry_after(None) is None and retry_after("soon") is None


def test_backoff_is_full_jitter_but_never_sooner_than_asked() -> None:
    wait = HonourRetryAfter(backoff=0.5, backoff_max=4.0)
    for attempt in range(1, 10):
        plain = SimpleNamespace(attempt_number=attempt, outcome=SimpleNamespace(exception=lambda: Retryable("x")))
        assert 0 <= wait(plain) <= min(4.0, 0.5 * 2 ** (attempt - 1))
        asked = SimpleNamespace(
            attempt_number=attempt, outcome=SimpleNamespace(exception=lambda: Retryable("x", 503, None, 2.5))
        )
        assert wait(asked) >= 2.5


def test_refusals_are_typed() -> None:
    from crm_client.errors import refusal

    assert isinstance(refusal(404, {}), crm_client.NotFound)
    assert isinstance(refusal(409, {}), crm_client.Conflict)
    assert isinstance(refusal(422, {}), crm_client.Invalid) and isinstance(refusal(400, {}), crm_client.Invalid)
    assert isinstance(refusal(401, {}), crm_client.Unauthorized)
    assert all(isinstance(refusal(s, {}), crm_client.Refused) for s in (400, 401, 404, 409, 418, 422))


def test_buttons_use_the_gateway_field_names() -> None:
    assert buttons.update_lead_status("l1", "won", "new").body == {
        "leadId": "l1",
        "status": "won",
        "expectedStatus": "new",
    }
    assert buttons.bulk_update_lead_status(["a", "b"], "lost").body == {"leadIds": ["a", "b"], "status": "lost"}
    assert buttons.confirm_booking("a1", send_sms=True).body == {"appointmentId": "a1", "sendSms": True}
    assert buttons.create_appointment("l1", "2030-01-02T15:00:00Z", 30).body == {
        "leadId": "l1",
        "startsAt": "2030-01-02T15:00:00Z",
        "durationMinutes": 30,
    }
    assert buttons.sms_history_path("a/b") == "/api/leads/a%2Fb/sms-history"
    with pytest.raises(ValueError):
        buttons.send_sms("l1")


def test_resume_positions_parse() -> None:
    assert Resume.parse("ep-1:42") == Resume("ep-1", 42) and str(Resume("ep-1", 42)) == "ep-1:42"
    assert Resume.parse("a:b:7") == Resume("a:b", 7)
    for bad in ("42", ":4", "e:x"):
        with pytest.raises(ValueError):
            Resume.parse(bad)
    assert hello("t", ["#"], Resume("e", 3))["resume"] == {"epoch": "e", "position": 3}
    assert "resume" not in hello("t", ["#"], None)


def event(position: int, id_: str, epoch: str = "e") -> dict:
    return {"type": "event", "topic": "leads.created", "id": id_, "position": position, "epoch": epoch, "data": {}}


def test_the_seam_is_deduplicated_by_position_and_by_id() -> None:
    stream = _Stream(Resume("e", 10))
    assert stream.welcome({"type": "welcome", "epoch": "e", "recovered": True, "position": 10}) is None
    assert stream.accept(event(10, "x")) is None  # applied already
    assert stream.accept(event(11, "a")).position == 11
    assert stream.accept(event(11, "a")) is None
    assert stream.accept(event(12, "a")) is None  # the same event published twice
    assert stream.accept(event(13, "b")).id == "b"
    assert stream.last == Resume("e", 13)


def test_a_gap_that_cannot_be_replayed_is_said_and_the_head_is_taken() -> None:
    stream = _Stream(Resume("old", 10))
    reload = stream.welcome({"type": "welcome", "epoch": "new", "recovered": False, "position": 99})
    assert reload is not None and reload.recovered is False and (reload.epoch, reload.position) == ("new", 99)
    assert stream.last == Resume("new", 99)


def test_a_first_connection_without_resume_needs_no_reload_but_a_reconnection_does() -> None:
    stream = _Stream(None)
    assert stream.welcome({"type": "welcome", "epoch": "e", "recovered": False, "position": 5}) is None
    assert stream.last == Resume("e", 5)  # no event yet: resume from the welcome
    assert stream.welcome({"type": "welcome", "epoch": "e", "recovered": True, "position": 5}) is None
    old_server = _Stream(None)
    assert old_server.welcome({"type": "welcome"}) is None
    assert old_server.welcome({"type": "welcome"}) is not None  # no positions: the gap is lost


def test_the_offline_store_keeps_order_and_scope(tmp_path) -> None:
    path = str(tmp_path / "q.db")
    mine = scope_of("http://gw", issue(TEST_SECRET, "org-a", "u1"))
    assert mine != scope_of("http://gw", issue(TEST_SECRET, "org-a", "u2"))
    store = Store(path, mine)
    first = store.add("k1", "update_lead_status", "/api/leads/update-status", '{"leadId":"l","status":"won"}')
    store.add("k2", "create_lead", "/api/leads", '{"name":"A","phone":"1"}')
    store.close()
    again = Store(path, mine)  # another process, later
    assert [q.key for q in again.pending()] == ["k1", "k2"] and again.pending()[0] == first
    assert again.raw_body(first.seq) == '{"leadId":"l","status":"won"}'
    failed = again.settle(first.seq, "failed", 409, {"status": 409})
    assert (failed.state, failed.status, failed.answer) == ("failed", 409, {"status": 409})
    assert [q.key for q in again.pending()] == ["k2"] and [o.key for o in again.outcomes()] == ["k1"]
    assert Store(path, scope_of("http://gw", issue(TEST_SECRET, "org-b", "u1"))).pending() == []


def test_an_origin_is_what_a_browser_says() -> None:
    assert origin("HTTP://LocalHost:8080/api/") == "http://localhost:8080"
    assert origin("http://gw:80/x") == origin("http://gw") == "http://gw"
    assert origin("https://gw:443") == "https://gw" and origin("https://gw:8443") == "https://gw:8443"
    assert origin("http://[0:0::1]:8080") == "http://[::1]:8080"
    # three hosts, three origins: only an issuer makes them one deployment
    assert len({origin(f"http://{host}:8080") for host in ("localhost", "127.0.0.1", "[::1]")}) == 3


def test_the_deployment_is_the_issuer_else_the_origin() -> None:
    plain, issued = issue(TEST_SECRET, "org-a", "u1"), issue(TEST_SECRET, "org-a", "u1", issuer="https://auth.test")
    assert scope_of("http://localhost:8080", plain) == Scope("http://localhost:8080", "org-a", "u1")
    assert scope_of("http://localhost:8080", plain) != scope_of("http://127.0.0.1:8080", plain)
    assert scope_of("http://localhost:8080/", plain) == scope_of("HTTP://LOCALHOST:8080", plain)
    assert scope_of("http://localhost:8080", issued) == scope_of("http://10.0.0.2:8081", issued)
    assert scope_of("http://localhost:8080", issued) == Scope("https://auth.test", "org-a", "u1")
    assert scope_of("http://gw", "not-a-token") == Scope("http://gw", None, None)
    assert not Scope("http://gw", None, None).same_identity(Scope("http://gw", None, None))
    assert Scope("a", "o", "u").same_identity(Scope("b", "o", "u"))
    assert not Scope("a", "o", "u").same_identity(Scope("a", "o", "u2"))
    for scope in (Scope("https://auth.test", "org-a", "u1"), Scope("http://gw", None, None)):
        assert Scope.parse(scope.key) == scope


def test_rows_of_the_old_format_are_found_and_none_is_lost(tmp_path) -> None:
    """Before deployments, a row's scope was the gateway URL (without its last slash), the org and the user,
    joined by newlines; "?" for claims of a token that could not be read."""
    path = str(tmp_path / "old.db")
    old = sqlite3.connect(path)
    old.executescript(SCHEMA)
    rows = [
        ("http://127.0.0.1:8080\norg-a\nu1", "mine", "pending"),
        ("http://127.0.0.1:8080\norg-a\nu1", "mine-settled", "done"),
        ("http://localhost:8080\norg-a\nu1", "mine-elsewhere", "pending"),
        ("http://127.0.0.1:8080\norg-a\nu2", "theirs", "pending"),
        ("http://127.0.0.1:8080\n?\n?", "unreadable-token", "pending"),
        ("not a scope at all", "unreadable-scope", "pending"),
    ]
    with old:
        old.executemany(
            "INSERT INTO presses (scope, key, operation, path, body, made_at, state) "
            "VALUES (?, ?, 'op', '/p', '{}', 't', ?)",
            rows,
        )
    old.close()
    token = issue(TEST_SECRET, "org-a", "u1", issuer="https://auth.test")
    store = Store(path, scope_of("http://127.0.0.1:8080", token), "http://127.0.0.1:8080/")
    mine = Scope("https://auth.test", "org-a", "u1")
    assert [(q.key, q.scope) for q in store.pending()] == [("mine", mine)]  # what the old client replayed
    assert [(o.key, o.scope) for o in store.outcomes()] == [("mine-settled", mine)]
    assert [(q.key, q.scope) for q in store.pending(all_scopes=True)] == [
        ("mine", mine),
        ("mine-elsewhere", Scope("http://localhost:8080", "org-a", "u1")),
        ("theirs", Scope("http://127.0.0.1:8080", "org-a", "u2")),
        ("unreadable-token", Scope("http://127.0.0.1:8080", None, None)),
        ("unreadable-scope", Scope("not a scope at all", None, None)),
    ]
    store.close()
    again = Store(path, scope_of("http://127.0.0.1:8080", issue(TEST_SECRET, "org-a", "u2")), "http://127.0.0.1:8080")
    assert [q.key for q in again.pending()] == ["theirs"]  # migrated once: the second opener finds its own
    (count,) = again.db.execute("SELECT count(*) FROM presses").fetchone()
    assert count == len(rows)


async def test_the_breaker_opens_fails_fast_and_lets_one_trial_through() -> None:
    breaker = SmsBreaker(threshold=2, cooldown=0.2)
    calls = 0
    answer = {"sms": {"status": "queued"}}

    async def send() -> dict:
        nonlocal calls
        calls += 1
        return answer

    for _ in range(2):
        assert await breaker.call(send) == answer  # the caller still gets the server's answer
    with pytest.raises(crm_client.CircuitOpen):
        await breaker.call(send)
    assert calls == 2 and await breaker.state() == "opened"

    answer = {"sms": {"status": "sent"}}
    gate = asyncio.Event()

    async def slow_trial() -> dict:
        await gate.wait()
        return await send()

    async def cooled_down() -> None:
        while True:  # the cool-down is the breaker's clock, not ours: try until it lets one through
            try:
                return await breaker.call(slow_trial)
            except crm_client.CircuitOpen:
                await asyncio.sleep(0.05)

    trial = asyncio.create_task(cooled_down())
    while not breaker.trial.locked():
        await asyncio.sleep(0.01)
    with pytest.raises(crm_client.CircuitOpen):  # one trial at a time
        await breaker.call(send)
    gate.set()
    assert await trial == {"sms": {"status": "sent"}}
    assert await breaker.state() == "closed"


async def test_refusals_do_not_count_against_the_provider() -> None:
    breaker = SmsBreaker(threshold=1, cooldown=30)

    async def refused() -> dict:
        raise crm_client.Conflict(409, {"status": 409})

    for _ in range(3):
        with pytest.raises(crm_client.Conflict):
            await breaker.call(refused)
    assert await breaker.state() == "closed"


def test_a_resume_position_may_be_given_in_three_shapes() -> None:
    assert Resume.coerce("e:4") == Resume.coerce({"epoch": "e", "position": 4}) == Resume.coerce(Resume("e", 4))
    assert Resume.coerce(None) is None
