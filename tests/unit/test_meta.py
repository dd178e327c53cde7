from types import SimpleNamespace

import pytest

from shared.identity import BrokerIdentity
from shared.messages import Meta
from shared.problems import Rejected

# The platform's user is AMQP_URL's ("guest"); "acme-sync" is an integrating system of organisation "acme".
IDENTITY = BrokerIdentity.of("amqp://guest:guest@127.0.0.1/", "", "acme-sync:acme")


def message(message_id: str | None, headers: dict, user_id: str | None = "guest") -> SimpleNamespace:
    raw = SimpleNamespace(message_id=message_id, headers=headers, routing_key="leads.create", correlation_id="c",
                          reply_to="r", user_id=user_id)
    return SimpleNamespace(raw_message=raw)


def test_meta_reads_ids_and_the_command_type() -> None:
    meta = Meta.of(message("m1", {"x-org-id": "o", "x-user-id": "u"}), IDENTITY)  # type: ignore[arg-type]
    assert (meta.message_id, meta.org_id, meta.user_id, meta.command, meta.attempt) == ("m1", "o", "u",
                                                                                       "leads.create", 1)


def test_after_a_delay_queue_the_command_type_comes_from_the_header() -> None:
    headers = {"x-org-id": "o", "x-user-id": "u", "x-routing-key": "leads.update_status", "x-attempt": 3}
    meta = Meta.of(message("m1", headers), IDENTITY)  # type: ignore[arg-type]
    assert (meta.command, meta.attempt) == ("leads.update_status", 3)


@pytest.mark.parametrize(("message_id", "headers", "missing"), [
    (None, {"x-org-id": "o", "x-user-id": "u"}, "message_id"),
    ("m1", {"x-user-id": "u"}, "x-org-id"),
    ("m1", {"x-org-id": "o"}, "x-user-id"),
])
def test_a_message_without_its_ids_is_refused(message_id: str | None, headers: dict, missing: str) -> None:
    with pytest.raises(Rejected) as refused:
        Meta.of(message(message_id, headers), IDENTITY)  # type: ignore[arg-type]
    assert refused.value.status == 422
    assert missing in refused.value.body["detail"]


def test_an_integrating_system_acts_for_its_own_organisation_only() -> None:
    own = Meta.of(message("m1", {"x-user-id": "u"}, "acme-sync"), IDENTITY)  # type: ignore[arg-type]
    also = Meta.of(message("m1", {"x-user-id": "u", "x-org-id": "acme"}, "acme-sync"), IDENTITY)  # type: ignore[arg-type]
    assert own.org_id == also.org_id == "acme"
    for user_id, org in (("acme-sync", "globex"), ("stranger", "acme"), (None, "acme")):
        with pytest.raises(Rejected) as refused:
            Meta.of(message("m1", {"x-user-id": "u", "x-org-id": org}, user_id), IDENTITY)  # type: ignore[arg-type]
        assert refused.value.status == 403 and refused.value.body["type"] == "/problems/forbidden"
