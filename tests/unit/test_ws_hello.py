"""The websocket's client messages (shared/contracts/realtime.py): what a hello may hold, and how a
refusal says what is wrong within a close frame."""

import json
import subprocess
import sys

import pytest

from shared.contracts.realtime import (
    MAX_REASON_BYTES,
    BadMessage,
    Pong,
    Refresh,
    Resume,
    close_reason,
    parse_hello,
    parse_later,
)


def hello(**fields: object) -> str:
    return json.dumps({"type": "hello", "token": "t", **fields})


def test_a_good_hello_and_its_defaults() -> None:
    parsed = parse_hello(hello(topics=["leads.*", "#.created"], resume={"epoch": "e", "position": 41}, new=1))
    assert (parsed.token, parsed.topics) == ("t", ["leads.*", "#.created"])
    assert parsed.resume == Resume(epoch="e", position=41)
    bare = parse_hello('{"type": "hello"}')
    assert (bare.token, bare.topics, bare.resume) == ("", ["#"], None)  # no token: refused as a token (4401)
    assert parse_hello(hello(resume={"epoch": "e", "position": -1})).resume == Resume(epoch="e", position=-1)


def test_the_limits_are_inclusive() -> None:
    edge = [".".join([f"w{n}"] * 16)[:255] for n in range(32)]
    assert parse_hello(hello(topics=edge)).topics == edge
    assert parse_hello(hello(topics=["a" * 255])).topics == ["a" * 255]
    assert parse_hello(hello(topics=["#." * 15 + "#"])).topics == ["#." * 15 + "#"]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"topics": [f"t{n}" for n in range(33)]}, "topics: List should have at most 32 items"),
        ({"topics": []}, "topics: List should have at least 1 item"),
        ({"topics": "leads.*"}, "topics: Input should be a valid list"),
        ({"topics": ["a" * 256]}, "topics.0: String should have at most 255 characters"),
        ({"topics": ["ok", ".".join("a" * 17)]}, "topics.1: at most 16 words"),
        ({"topics": [""]}, "topics.0: String should have at least 1 character"),
        ({"topics": ["a..b"]}, "topics.0: an empty word"),
        ({"topics": [".a"]}, "topics.0: an empty word"),
        ({"topics": ["a."]}, "topics.0: an empty word"),
        ({"topics": [None]}, "topics.0: Input should be a valid string"),
        ({"token": 5}, "token: Input should be a valid string"),
        ({"type": "subscribe"}, "type: Input should be 'hello'"),
        ({"resume": {"epoch": "e", "position": True}}, "resume.position: Input should be a valid integer"),
        ({"resume": {"epoch": "e", "position": "3"}}, "resume.position: Input should be a valid integer"),
        ({"resume": {"epoch": "e", "position": 2.0}}, "resume.position: Input should be a valid integer"),
        ({"resume": {"epoch": "e", "position": -2}}, "resume.position: Input should be greater than or equal to -1"),
        ({"resume": {"epoch": "e"}}, "resume.position: Field required"),
        ({"resume": {"epoch": 1, "position": 1}}, "resume.epoch: Input should be a valid string"),
        ({"resume": [1, 2]}, "resume: Input should be a valid dictionary"),
    ],
)
def test_a_bad_hello_says_what_is_wrong(fields: dict, says: str) -> None:
    with pytest.raises(BadMessage) as refused:
        parse_hello(hello(**fields))
    assert str(refused.value).startswith(f"bad hello: {says}")


def test_many_faults_are_counted_not_listed() -> None:
    with pytest.raises(BadMessage, match=r"^bad hello: token: .* \(and 2 more\)$"):
        parse_hello(hello(topics=[1, 2], token=3))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "the hello must be a JSON text frame"),
        ("not json", "the hello is not JSON"),
        ("[" * 100_000, "the hello is not JSON"),  # deeper than the decoder's stack
        ('{"type": "hello", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "the hello is not JSON"),
        ("[]", "the hello must be a JSON object"),
        ("null", "the hello must be a JSON object"),
        ('"hello"', "the hello must be a JSON object"),
        ("", "the hello is not JSON"),
    ],
)
def test_what_is_no_hello_at_all(text: str | None, says: str) -> None:
    with pytest.raises(BadMessage, match=f"^{says}$"):
        parse_hello(text)


def test_later_messages_are_a_refresh_or_a_pong() -> None:
    assert parse_later('{"type": "refresh", "token": "t2"}') == Refresh(type="refresh", token="t2")
    assert isinstance(parse_later('{"type": "pong"}'), Pong) and isinstance(parse_later('{"type": "ping"}'), Pong)
    for text, says in [
        ('{"type": "hello"}', "expected a refresh or a pong"),
        ('{"type": ["refresh"]}', "expected a refresh or a pong"),
        ('{"token": "t"}', "expected a refresh or a pong"),
        ('{"type": "refresh", "token": 7}', "bad refresh: token: Input should be a valid string"),
        ("pong", "the message is not JSON"),
    ]:
        with pytest.raises(BadMessage, match=f"^{says}"):
            parse_later(text)


@pytest.mark.parametrize("text", ["short", "é" * 100, "€" * 100, "😀" * 50, "x" + "😀" * 50, "\ud800" * 200])
def test_a_close_reason_fits_a_close_frame_and_stays_utf8(text: str) -> None:
    reason = close_reason(text)
    assert len(reason) <= MAX_REASON_BYTES
    decoded = reason.decode("utf-8")  # cut at a character's boundary, never inside one
    assert text.startswith(decoded) or "\ud800" in text
    assert len(reason) > MAX_REASON_BYTES - 4 or reason == text.encode()


def test_the_checks_hold_under_python_dash_o() -> None:
    """No `assert` in the parsing: `python -O` would take it out."""
    code = (
        "from shared.contracts.realtime import BadMessage, parse_hello\n"
        'for text in (\'[1]\', \'{"type": "hello", "topics": 5}\', \'{"type": "other"}\'):\n'
        "    try:\n        parse_hello(text)\n    except BadMessage:\n        continue\n"
        "    raise SystemExit('accepted ' + text)\n"
    )
    done = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
