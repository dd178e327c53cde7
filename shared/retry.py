"""Error semantics, in one place.

- `Rejected` (shared.problems, raised by name: `NotFound`, `ForbiddenMove`...) is an
  expected, permanent refusal (bad input, not found, a move the rules forbid):
  answered at once with its problem body, stored in the inbox like any answer,
  never retried. A value the database refuses (`asyncpg.DataError`,
  e.g. a NUL character) is bad input too: a 422 refusal.
- `Pending` is transient with an interim answer (e.g. "queued" while an SMS
  provider is down): the caller gets it at once, the retries go on behind it.
- Anything else is treated as transient (database unreachable, serialization
  failure, lock or statement timeout, broker hiccup, and also a bug): retried
  through the delay queues with exponential tiers and jitter, counting attempts in
  a header; after the last tier the message is parked where a person can see it.
"""

import random
from dataclasses import dataclass
from datetime import timedelta

from shared.contracts.envelope import Reply


class Pending(Exception):
    """Transient, with an answer meanwhile: the caller hears `reply` now (the first time),
    and the command is retried through the delay queues like any transient failure.

    `reply=None`: no interim answer (the real one is moments away).
    `attempted=False` says nothing was tried (a circuit breaker kept the call from the
    provider): the wait does not use up one of the command's attempts.
    """

    def __init__(self, reply: Reply | None, reason: str, *, attempted: bool = True):
        super().__init__(reason)
        self.reply, self.attempted = reply, attempted


@dataclass(frozen=True)
class RetryPolicy:
    delays: tuple[float, ...]
    jitter: float = 0.2

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def delay(self, attempt: int) -> tuple[int, timedelta] | None:
        """The delay tier and the jittered wait after failed attempt `attempt` (1-based), or None: park.
        (An attempt below 1 never gets here: the pipeline refuses such an `x-attempt` when it reads it.)"""
        if attempt < 1:
            raise ValueError(f"attempt {attempt}: attempts count from 1")
        tier = attempt - 1
        if tier >= len(self.delays):
            return None
        seconds = self.delays[tier] * random.uniform(1 - self.jitter, 1 + self.jitter)
        return tier, timedelta(seconds=seconds)
