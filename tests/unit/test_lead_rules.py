import pytest

from services.leads import domain
from shared.contracts.leads import LeadStatus as S
from shared.problems import Rejected

ALLOWED = {
    (S.new, S.contacted),
    (S.new, S.qualified),
    (S.new, S.proposal),
    (S.new, S.won),
    (S.new, S.lost),
    (S.contacted, S.qualified),
    (S.contacted, S.proposal),
    (S.contacted, S.won),
    (S.contacted, S.lost),
    (S.qualified, S.proposal),
    (S.qualified, S.won),
    (S.qualified, S.lost),
    (S.proposal, S.won),
    (S.proposal, S.lost),
    (S.lost, S.new),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_every_move_follows_the_table(current: S, target: S) -> None:
    if current == target:
        assert domain.check_move("l1", current, target) is False  # nothing to do, no refusal
    elif (current, target) in ALLOWED:
        assert domain.check_move("l1", current, target) is True
    else:
        with pytest.raises(Rejected) as refused:
            domain.check_move("l1", current, target)
        assert refused.value.status == 409
        assert f"current status is {current}" in refused.value.body["detail"]


def test_expected_status_mismatch_is_a_conflict_even_when_the_move_is_allowed() -> None:
    with pytest.raises(Rejected) as refused:
        domain.check_move("l1", S.contacted, S.qualified, expected=S.new)
    assert refused.value.status == 409
    assert refused.value.body["currentStatus"] == "contacted"


def test_expected_status_matching_lets_the_move_through() -> None:
    assert domain.check_move("l1", S.new, S.contacted, expected=S.new) is True


def test_bulk_reasons() -> None:
    assert domain.bulk_failure_reason(None, S.won) == "not_found"
    assert domain.bulk_failure_reason(S.won, S.lost) == "cannot move from won to lost"
    assert domain.bulk_failure_reason(S.won, S.won) is None
    assert domain.bulk_failure_reason(S.new, S.won) is None


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(202) 555-0143", "US", "+12025550143"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
    ],
)
def test_phone_numbers_are_stored_as_e164(raw: str, region: str, e164: str) -> None:
    assert domain.normalize_phone(raw, region) == e164


@pytest.mark.parametrize("raw", ["hello", "123", "+1 555"])
def test_invalid_phone_numbers_are_refused_with_422(raw: str) -> None:
    with pytest.raises(Rejected) as refused:
        domain.normalize_phone(raw, "US")
    assert refused.value.status == 422
    assert refused.value.body["errors"][0]["field"] == "phone"
