"""SMS rules: templates, keywords, forward-only statuses, Twilio's Smart Encoding."""

import pytest

from services.sms import domain, smart_encoding
from shared.contracts.sms import SmsStatus as S
from shared.problems import Rejected


@pytest.mark.parametrize(
    "body",
    [
        "Hi {{FirstName}}",
        "Hi {{ First_Name }}",
        "{{first-name}}",
        "{{first_name1}}",
        "{{ first_name }} {{",
        "}} {{ name }}",
        "{{}}",
    ],
)
def test_a_template_with_a_field_we_cannot_fill_is_refused(body: str) -> None:
    with pytest.raises(Rejected) as refused:
        domain.template_fields(body)
    assert refused.value.status == 422


def test_fields_are_filled_from_the_lead() -> None:
    assert domain.template_fields("Hi {{ first_name }} {{last_name}}") == ["first_name", "last_name"]
    assert domain.render("Hi {{ first_name }}, {{name}} at {{phone}}", "Ada Lovelace", "+1415") == (
        "Hi Ada, Ada Lovelace at +1415"
    )


@pytest.mark.parametrize(
    "body", ["STOP", " stop ", "StopAll", "UNSUBSCRIBE", "cancel", "End", "QUIT", "revoke", "opt out", "OPT   OUT"]
)
def test_stop_words_opt_out(body: str) -> None:
    assert domain.keyword(body) is True


@pytest.mark.parametrize("body", ["START", " yes", "unstop"])
def test_start_words_opt_back_in(body: str) -> None:
    assert domain.keyword(body) is False


@pytest.mark.parametrize("body", ["stop please", "hello", "", "STOP!"])
def test_other_messages_are_not_keywords(body: str) -> None:
    assert domain.keyword(body) is None


@pytest.mark.parametrize(
    ("current", "new", "moves"),
    [
        (S.queued, S.sent, True),
        (S.sent, S.delivered, True),
        (S.sending, S.sent, True),
        (S.delivered, S.sent, False),
        (S.sent, S.sent, False),
        (S.delivered, S.failed, False),
        (S.failed, S.delivered, False),
        (S.sent, S.undelivered, True),
    ],
)
def test_statuses_only_move_forward(current: S, new: S, moves: bool) -> None:
    assert domain.moves_forward(current, new) is moves


@pytest.mark.parametrize(
    ("written", "twilio_keeps"),
    [
        ("“quoted” and ‘single’", "\"quoted\" and 'single'"),
        ("it’s 10–11 — or later…", "it's 10-11 - or later..."),
        ("non\u00a0breaking\u2009thin\u202fspaces", "non breaking thin spaces"),
        ("«ok» „low” ‚x‘ ＂wide＂", '"ok" "low" ,x\' "wide"'),
        ("½ price", "1/2 price"),
        ("plain ASCII: unchanged", "plain ASCII: unchanged"),
        ("“Hi” 🙂", "“Hi” 🙂"),  # an emoji stays, so the body is UCS-2 anyway: Twilio leaves it whole
        ("“Привет”", "“Привет”"),  # another script likewise
    ],
)
def test_smart_encoding_rewrites_punctuation_only_when_the_body_then_fits_gsm7(written: str, twilio_keeps: str) -> None:
    assert smart_encoding.smart_encoded(written) == twilio_keeps


@pytest.mark.parametrize("written", ["“Hi” — it’s 10:00…", "“Hi” 🙂", "plain", "½\u00a0‘x’", ""])
def test_a_body_compares_equal_to_what_twilio_keeps_of_it(written: str) -> None:
    kept = smart_encoding.smart_encoded(written)
    assert smart_encoding.comparable(kept) == smart_encoding.comparable(written)
    assert smart_encoding.comparable(smart_encoding.comparable(written)) == smart_encoding.comparable(written)


@pytest.mark.parametrize(("ours", "theirs"), [("“Hi” — 10:00", '"Hi" - 11:00'), ("it’s", "its"), ("a—b", "a--b")])
def test_other_bodies_still_differ_after_normalisation(ours: str, theirs: str) -> None:
    assert smart_encoding.comparable(ours) != smart_encoding.comparable(theirs)
