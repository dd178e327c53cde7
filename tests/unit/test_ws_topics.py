"""Topic patterns compiled once per socket (services/gateway/topics.py): AMQP semantics exactly, in time
linear in the topic whatever the pattern."""

import random
import time

import pytest

from services.gateway.topics import Topics, topic_matches


def reference(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    """AMQP topic matching as a definition (exponential in `#`: for small cases only)."""
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(reference(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and reference(rest, words[1:])


@pytest.mark.parametrize("seed", range(4))
def test_the_compiled_patterns_agree_with_the_definition(seed: int) -> None:
    rng = random.Random(seed)
    matched = 0
    for _ in range(5000):
        pattern = ".".join(rng.choice(["#", "#", "*", "a", "a", "b", "ab"]) for _ in range(rng.randint(1, 7)))
        topic = ".".join(rng.choice(["a", "a", "b", "ab", "ba", ""]) for _ in range(rng.randint(1, 8)))
        expected = reference(tuple(pattern.split(".")), tuple(topic.split(".")))
        assert topic_matches(pattern, topic) is expected, (pattern, topic)
        matched += expected
    assert 500 < matched < 4500  # both answers were tried often


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("a+b.(x)", "a+b.(x)", True),  # no word is a regular expression
        ("a+b.(x)", "aab.x", False),
        ("[.\\", "[.\\", True),
        ("lea*ds.#", "leads.created", False),  # `*` and `#` are wildcards only as whole words
        ("lea*ds.#", "lea*ds", True),
        ("a#.b", "a#.b", True),
        ("a", "ab", False),
        ("#.a", "x.ab", False),
        ("#.a.#", "ab.ab.ba", False),
        ("a.*.b", "a..b", True),  # a topic's empty word is still a word
        ("*", "", True),
        ("#", "", True),
        ("#", "x.y.z", True),
        ("#.#.#", "x", True),
        ("x.\n", "x.\n", True),
        ("x.*", "x.\n", True),
    ],
)
def test_words_are_literal_and_only_whole_words_are_wildcards(pattern: str, topic: str, expected: bool) -> None:
    assert topic_matches(pattern, topic) is expected


def test_a_socket_matches_any_of_its_patterns() -> None:
    topics = Topics(["leads.status_changed", "sms.*", "sms.*", "#.confirmed"])
    assert [
        topics.match(t) for t in ("leads.status_changed", "leads.created", "sms.sent", "appointments.confirmed")
    ] == [True, False, True, True]
    assert len(topics._compiled) == 3  # the same pattern twice is compiled once


WORST = [  # (pattern, whether it matches "a.a.….a")
    ("#." * 15 + "x", False),  # every split of the topic, for a backtracking matcher
    ("#." * 15 + "#", True),
    ("a." + "#." * 14 + "b", False),
    (".".join(["#", "a"] * 7 + ["#", "b"]), False),
    (".".join(["a", "#"] * 7 + ["b", "y"]), False),
    (".".join(["#", "*"] * 7 + ["#", "b"]), False),
    ("#." + "a." * 13 + "b.#", False),
    ("#." + "a." * 14 + "a", True),
]


@pytest.mark.parametrize(("pattern", "matches"), WORST)
def test_the_worst_patterns_take_linear_time(pattern: str, matches: bool) -> None:
    """A guard against exponential blow-up, not a benchmark: the bound is some 100 x what it takes."""
    assert len(pattern.split(".")) == 16
    topic = ".".join(["a"] * 127)  # 253 characters: about the longest routing key
    topics = Topics([pattern])
    started = time.process_time()
    results = {topics.match(topic) for _ in range(1000)}
    assert time.process_time() - started < 1.0
    assert results == {matches}
