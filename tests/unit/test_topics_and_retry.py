from datetime import timedelta

import pytest

from services.gateway.ws import topic_matches
from shared.retry import RetryPolicy
from shared.topology import ServiceTopology


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("leads.*", "leads.created", True),
        ("leads.*", "leads.status_changed", True),
        ("leads.*", "leads", False),
        ("leads.*", "leads.a.b", False),
        ("leads.#", "leads", True),
        ("leads.#", "leads.a.b", True),
        ("#", "anything.at.all", True),
        ("#.created", "leads.created", True),
        ("#.created", "created", True),
        ("*.created", "appointments.created", True),
        ("leads.created", "leads.status_changed", False),
        ("sms.*", "leads.created", False),
    ],
)
def test_amqp_topic_patterns(pattern: str, topic: str, expected: bool) -> None:
    assert topic_matches(pattern, topic) is expected


def test_retry_policy_walks_the_tiers_then_parks() -> None:
    policy = RetryPolicy((1, 5, 30), jitter=0.2)
    assert policy.max_attempts == 4
    for attempt, base in ((1, 1), (2, 5), (3, 30)):
        tier, wait = policy.delay(attempt)  # type: ignore[misc]
        assert tier == attempt - 1
        assert timedelta(seconds=base * 0.8) <= wait <= timedelta(seconds=base * 1.2)
    assert policy.delay(4) is None


def test_jitter_spreads_the_waits() -> None:
    waits = {RetryPolicy((10,)).delay(1)[1] for _ in range(20)}  # type: ignore[index]
    assert len(waits) > 1


def test_delay_queues_dead_letter_back_to_the_work_queue() -> None:
    topology = ServiceTopology("leads", (0.5, 2))
    first = topology.delay(0)
    assert first.name == "leads.delay.500ms"
    # A quorum queue that dead-letters at least once: a retry waiting here outlives a broker restart.
    assert first.declare_arguments["x-queue-type"] == "quorum"
    assert first.arguments["x-dead-letter-strategy"] == "at-least-once"
    assert first.arguments["x-overflow"] == "reject-publish"
    assert first.arguments["x-dead-letter-routing-key"] == "leads.commands"
    assert first.arguments["x-dead-letter-exchange"] == ""
    assert first.arguments["x-message-ttl"] >= 500 * 1.2  # the cap stays above the largest jittered wait
    assert topology.work.declare_arguments["x-queue-type"] == "quorum"
