"""SMS rules: templates, keywords, forward-only statuses."""
import pytest

from services.sms import domain
from shared.contracts.sms import SmsStatus as S
from shared.problems import Rejected


@pytest.mark.parametrize("body", ["Hi {{FirstName}}", "Hi {{ First_Name }}", "{{first-name}}", "{{first_name1}}",
                                  "{{ first_name }} {{", "}} {{ name }}", "{{}}"])
def test_a_template_with_a_field_we_cannot_fill_is_refused(body: str) -> None:
    with pytest.raises(Rejected) as refused:
        domain.template_fields(body)
    assert refused.value.status == 422


def test_fields_are_filled_from_the_lead() -> None:
    assert domain.template_fields("Hi {{ first_name }} {{last_name}}") == ["first_name", "last_name"]
    assert domain.render("Hi {{ first_name }}, {{name}} at {{phone}}", "Ada Lovelace", "+1415") == (
        "Hi Ada, Ada Lovelace at +1415")


@pytest.mark.parametrize("body", ["STOP", " stop ", "StopAll", "UNSUBSCRIBE", "cancel", "End", "QUIT", "revoke",
                                  "opt out", "OPT   OUT"])
def test_stop_words_opt_out(body: str) -> None:
    assert domain.keyword(body) is True


@pytest.mark.parametrize("body", ["START", " yes", "unstop"])
def test_start_words_opt_back_in(body: str) -> None:
    assert domain.keyword(body) is False


@pytest.mark.parametrize("body", ["stop please", "hello", "", "STOP!"])
def test_other_messages_are_not_keywords(body: str) -> None:
    assert domain.keyword(body) is None


@pytest.mark.parametrize(("current", "new", "moves"), [
    (S.queued, S.sent, True), (S.sent, S.delivered, True), (S.sending, S.sent, True),
    (S.delivered, S.sent, False), (S.sent, S.sent, False), (S.delivered, S.failed, False),
    (S.failed, S.delivered, False), (S.sent, S.undelivered, True),
])
def test_statuses_only_move_forward(current: S, new: S, moves: bool) -> None:
    assert domain.moves_forward(current, new) is moves
