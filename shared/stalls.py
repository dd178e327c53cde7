"""Messages held too long: a stalled consumer says so instead of looking ready.

Guarantee: every message a service is handling is known, with the moment it was delivered, until it is
acked, given back or refused. One held past MESSAGE_DEADLINE_SECONDS (several statement timeouts: no
handler waits that long for anything but a stuck dependency or a bug) is logged once with its id
(`consumer.stalled`), counted in `crm_stalled_messages`, and makes the service answer not ready (its
health answer, and so the gateway's /readyz) for as long as it is held.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from shared import logging, metrics

log = logging.get("consumer")


@dataclass
class _Held:
    message_id: object  # as the publisher put them (made printable only when said: every message is held)
    routing_key: object
    since: float = field(default_factory=time.monotonic)
    reported: bool = False

    def said(self) -> dict[str, str]:
        return {"command_id": logging.printable(self.message_id), "routing_key": logging.printable(self.routing_key)}


class Held:
    def __init__(self, deadline: float):
        self.deadline = deadline
        self._held: dict[int, _Held] = {}

    @contextmanager
    def holding(self, raw: Any) -> Iterator[None]:
        """While a delivered message (aio-pika's) is being handled."""
        key = id(raw)
        held = self._held[key] = _Held(raw.message_id, raw.routing_key)
        try:
            yield
        finally:
            self._held.pop(key, None)
            if held.reported:  # let go at last: the gauge says so now, not at the next check
                log.warning("consumer.let_go", **held.said(), held_seconds=round(time.monotonic() - held.since, 1))
                metrics.STALLED.set(len(self.stalled()))

    def stalled(self) -> list[_Held]:
        cutoff = time.monotonic() - self.deadline
        return [held for held in self._held.values() if held.since < cutoff]

    def check(self) -> None:
        """Log each newly stalled message once and keep the gauge current (a loop's cycle, every second)."""
        stalled = self.stalled()
        for held in stalled:
            if not held.reported:
                held.reported = True
                log.error(
                    "consumer.stalled",
                    **held.said(),
                    held_seconds=round(time.monotonic() - held.since, 1),
                    deadline_seconds=self.deadline,
                )
        metrics.STALLED.set(len(stalled))

    def reasons(self) -> list[str]:
        stalled = self.stalled()
        if not stalled:
            return []
        oldest = min(stalled, key=lambda held: held.since)
        said = oldest.said()
        return [
            f"{len(stalled)} message(s) held past {self.deadline:.0f} s (the oldest for "
            f"{time.monotonic() - oldest.since:.0f} s: {said['routing_key']} {said['command_id']})"
        ]
