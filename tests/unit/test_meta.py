from types import SimpleNamespace

import pytest

from shared.messages import Meta
from shared.problems import Rejected


def message(message_id: str | None, headers: dict) -> SimpleNamespace:
    raw = SimpleNamespace(message_id=message_id, headers=headers, routing_key="leads.create", correlation_id="c",
                          reply_to="r")
    return SimpleNamespace(raw_message=raw)


def test_meta_reads_ids_and_the_command_type() -> None:
    meta = Meta.of(message("m1", {"x-org-id": "o", "x-user-id": "u"}))  # type: ignore[arg-type]
    assert (meta.message_id, meta.org_id, meta.user_id, meta.command, meta.attempt) == ("m1", "o", "u",
                                                                                       "leads.create", 1)


def test_after_a_delay_queue_the_command_type_comes_from_the_header() -> None:
    headers = {"x-org-id": "o", "x-user-id": "u", "x-routing-key": "leads.update_status", "x-attempt": 3}
    meta = Meta.of(message("m1", headers))  # type: ignore[arg-type]
    assert (meta.command, meta.attempt) == ("leads.update_status", 3)


@pytest.mark.parametrize(("message_id", "headers", "missing"), [
    (None, {"x-org-id": "o", "x-user-id": "u"}, "message_id"),
    ("m1", {"x-user-id": "u"}, "x-org-id"),
    ("m1", {"x-org-id": "o"}, "x-user-id"),
])
def test_a_message_without_its_ids_is_refused(message_id: str | None, headers: dict, missing: str) -> None:
    with pytest.raises(Rejected) as refused:
        Meta.of(message(message_id, headers))  # type: ignore[arg-type]
    assert refused.value.status == 422
    assert missing in refused.value.body["detail"]
