from types import SimpleNamespace

import pytest

from shared.identity import BrokerIdentity
from shared.messages import Meta
from shared.problems import Rejected

# The platform's user is AMQP_URL's ("guest"); "acme-sync" is an integrating system of organisation "acme".
IDENTITY = BrokerIdentity.of("amqp://guest:guest@127.0.0.1/", "", "acme-sync:acme")
ATTEMPTS = 4  # three retry tiers


def message(message_id: object, headers: object, user_id: object = "guest", **properties: object) -> SimpleNamespace:
    raw = SimpleNamespace(
        **{
            "message_id": message_id,
            "headers": headers,
            "routing_key": "leads.create",
            "correlation_id": "c",
            "reply_to": "r",
            "user_id": user_id,
            "content_type": "application/json",
            "content_encoding": None,
            **properties,
        }
    )
    return SimpleNamespace(raw_message=raw)


def test_meta_reads_ids_and_the_command_type() -> None:
    meta = Meta.of(message("m1", {"x-org-id": "o", "x-user-id": "u"}), IDENTITY, ATTEMPTS)  # type: ignore[arg-type]
    assert (meta.message_id, meta.org_id, meta.user_id, meta.command, meta.attempt) == (
        "m1",
        "o",
        "u",
        "leads.create",
        1,
    )


def test_after_a_delay_queue_the_command_type_comes_from_the_header() -> None:
    headers = {"x-org-id": "o", "x-user-id": "u", "x-routing-key": "leads.update_status", "x-attempt": 3}
    meta = Meta.of(message("m1", headers), IDENTITY, ATTEMPTS)  # type: ignore[arg-type]
    assert (meta.command, meta.attempt) == ("leads.update_status", 3)


@pytest.mark.parametrize(
    ("message_id", "headers", "missing"),
    [
        (None, {"x-org-id": "o", "x-user-id": "u"}, "message_id"),
        ("m1", {"x-user-id": "u"}, "x-org-id"),
        ("m1", {"x-org-id": "o"}, "x-user-id"),
    ],
)
def test_a_message_without_its_ids_is_refused(message_id: str | None, headers: dict, missing: str) -> None:
    with pytest.raises(Rejected) as refused:
        Meta.of(message(message_id, headers), IDENTITY, ATTEMPTS)  # type: ignore[arg-type]
    assert refused.value.status == 422
    assert missing in refused.value.body["detail"]


GOOD = {"x-org-id": "o", "x-user-id": "u"}
HOSTILE = [  # (header or property, value): each a 422 /problems/invalid naming it, never a TypeError
    *(
        (name, value)
        for name in ("x-org-id", "x-user-id", "x-routing-key", "x-attempt", "x-last-error")
        for value in ({"a": 1}, [1, 2], b"\xff\xfe", True, 1.5, -1, 2**63, "x" * 1_000_000)
    ),
    ("x-attempt", 0),
    ("x-attempt", ATTEMPTS + 1),
    ("x-attempt", "2"),
    ("x-org-id", ""),
    ("x-org-id", "a\x00b"),
    ("traceparent", {"a": 1}),
    ("traceparent", "t" * 10_000),
    ("message_id", b"\xff"),
    ("message_id", "m\x00"),
    ("message_id", 7),
    ("correlation_id", b"\xff"),
    ("reply_to", ["q"]),
    ("user_id", b"\xfe"),
    ("routing_key", ""),
    ("message_id", "\udcff\udcfe"),  # what a short string that is not UTF-8 becomes (shared/amqp_decoding.py)
    ("content_type", "text/plain"),
    ("content_type", "application/xml"),
    ("content_encoding", "gzip"),
]


def _hostile(name: str, value: object) -> SimpleNamespace:
    if name.startswith("x-") or name == "traceparent":
        return message("m1", {**GOOD, name: value})
    return message(**{"message_id": "m1", "headers": GOOD, name: value})  # type: ignore[arg-type]


def _id(name: str, value: object) -> str:
    return f"{name}={type(value).__name__}:{len(value) if isinstance(value, str | bytes) else value!r}"[:60]


@pytest.mark.parametrize(("name", "value"), HOSTILE, ids=[_id(n, v) for n, v in HOSTILE])
def test_a_header_or_property_that_cannot_be_read_is_refused_by_name(name: str, value: object) -> None:
    with pytest.raises(Rejected) as refused:
        Meta.of(_hostile(name, value), IDENTITY, ATTEMPTS)  # type: ignore[arg-type]
    body = refused.value.body
    assert (refused.value.status, body["type"]) == (422, "/problems/invalid")
    assert name in body["detail"] or any(name in e["field"] for e in body["errors"]), body


def test_json_with_its_charset_and_a_utf8_encoding_are_read() -> None:
    for content_type, encoding in (("application/json; charset=utf-8", "utf-8"), (None, None), ("", "")):
        meta = Meta.of(message("m1", GOOD, content_type=content_type, content_encoding=encoding), IDENTITY, ATTEMPTS)  # type: ignore[arg-type]
        assert meta.message_id == "m1"


def test_headers_that_are_no_table_are_ignored_and_the_message_lacks_its_ids() -> None:
    with pytest.raises(Rejected) as refused:
        Meta.of(message("m1", ["not", "a", "table"]), IDENTITY, ATTEMPTS)  # type: ignore[arg-type]
    assert refused.value.status == 422


def test_only_known_headers_and_the_trace_context_are_carried_to_a_retry() -> None:
    headers = {**GOOD, "x-attempt": 2, "junk": "x" * 100_000, "traceparent": "00-abc-def-01"}
    meta = Meta.of(message("m1", headers), IDENTITY, ATTEMPTS)  # type: ignore[arg-type]
    assert meta.carried() == {
        "x-org-id": "o",
        "x-user-id": "u",
        "x-routing-key": "leads.create",
        "traceparent": "00-abc-def-01",
    }
    assert meta.attempt == 2 and not meta.retried


def test_an_integrating_system_acts_for_its_own_organisation_only() -> None:
    own = Meta.of(message("m1", {"x-user-id": "u"}, "acme-sync"), IDENTITY, ATTEMPTS)  # type: ignore[arg-type]
    also = Meta.of(message("m1", {"x-user-id": "u", "x-org-id": "acme"}, "acme-sync"), IDENTITY, ATTEMPTS)  # type: ignore[arg-type]
    assert own.org_id == also.org_id == "acme"
    for user_id, org in (("acme-sync", "globex"), ("stranger", "acme"), (None, "acme")):
        with pytest.raises(Rejected) as refused:
            Meta.of(message("m1", {"x-user-id": "u", "x-org-id": org}, user_id), IDENTITY, ATTEMPTS)  # type: ignore[arg-type]
        assert refused.value.status == 403 and refused.value.body["type"] == "/problems/forbidden"
