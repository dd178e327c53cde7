"""The chaos checker judges: a press whose effect is missing is lost, one done twice is duplicated, an effect
nobody pressed for is unexpected. Shown on a campaign's start (three SMS) and a refund, with the state made here."""

from random import Random

from chaos import checker
from chaos.presses import Factory, Press
from chaos.state import State

PHONES = ["+14155550001", "+14155550002", "+14155550003"]
BODY = "Chaos campaign (campaign sms-run-1)"


def start() -> Press:
    press = Factory("org-1", ["agent-1"], Random(1), 0.0, "run").start_campaign("c-1", BODY, PHONES)
    press.outcome = "accepted"
    return press


def state_for(press: Press, texts: list[str], sent: int = 3) -> State:
    """The final state: the campaign completed, `sent` targets and SMS rows, the sandbox's `texts` (phones)."""
    state = State(texts=[{"to": phone, "body": BODY} for phone in texts])
    for i, count in enumerate(press.counts):
        state.counts[(press.seq, i)] = 1 if count.label == "campaign completed" else sent
    state.rows = {
        what: []
        for what in (
            "leads",
            "status moves",
            "appointments",
            "sms",
            "proposals",
            "payments",
            "contracts",
            "refunds",
            "templates",
            "campaigns",
            "documents",
        )
    }
    return state


def test_a_campaign_that_texted_each_lead_once_is_applied() -> None:
    press = start()
    found = checker.press_findings(press, state_for(press, PHONES), {})
    assert (found["lost"], found["duplicated"], found["unexpected"]) == ([], [], [])


def test_a_lead_texted_twice_is_a_duplicate_and_one_not_texted_is_lost() -> None:
    press = start()
    found = checker.press_findings(press, state_for(press, [PHONES[0], PHONES[0], PHONES[1]]), {})
    assert found["duplicated"] == [f"SMS to {PHONES[0]}: 2 in the sandbox, wanted 1"]
    assert found["lost"] == [f"SMS to {PHONES[2]}: 0 in the sandbox, wanted 1"]


def test_fewer_targets_sent_is_lost_only_for_an_accepted_press() -> None:
    press = start()
    assert (
        "targets sent: 2 rows, wanted 3" in checker.press_findings(press, state_for(press, PHONES, sent=2), {})["lost"]
    )
    press.outcome = "unresolved"  # it may never have been applied: fewer is not lost
    assert checker.press_findings(press, state_for(press, [], sent=0), {})["lost"] == []


def test_a_campaign_sms_or_a_refund_no_press_asked_for_is_unexpected() -> None:
    press = start()
    state = state_for(press, PHONES)
    state.texts.append({"to": "+14155559999", "body": "Chaos campaign (nobody's)"})
    state.rows["refunds"] = [{"claim": "refund-nobody"}]
    state.rows["campaigns"] = [{"claim": "campaign-nobody"}]
    found = checker.unexpected_effects([press], state)
    assert found == {
        "refunds": ["refund-nobody"],
        "campaigns": ["campaign-nobody"],
        "sandbox SMS": ["+14155559999: Chaos campaign (nobody's)"],
    }


def test_a_lead_texted_by_a_campaign_whose_window_is_shut_is_unexpected() -> None:
    press = Factory("org-1", ["agent-1"], Random(1), 0.0, "run").start_campaign("c-2", BODY, PHONES, quiet=True)
    press.outcome = "accepted"
    state = state_for(press, [PHONES[1]], sent=3)
    assert checker.press_findings(press, state, {})["unexpected"] == [f"SMS to {PHONES[1]}: 1 in the sandbox, wanted 0"]
    assert checker.press_findings(press, state_for(press, [], sent=3), {})["unexpected"] == []
