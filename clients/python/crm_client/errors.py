"""What a call can end in besides its answer.

    ClientError
    ├── Refused (the gateway said no; never retried)   status + problem+json body
    │   ├── Invalid       400, 422
    │   ├── Unauthorized  401, 403
    │   ├── NotFound      404
    │   └── Conflict      409 without Retry-After (the state forbids it)
    ├── ServerError       500, or a command parked after the service's retries
    ├── Unreachable       network errors, 502/503/504 after every retry: safe to repeat with the same key
    ├── StillAccepted     202 followed until the deadline, no final answer yet (it is durably queued server-side)
    └── CircuitOpen       the SMS breaker is open: failed fast, nothing was sent
"""
from typing import Any


class ClientError(Exception):
    """Base of every error this package raises."""


class Refused(ClientError):
    """A domain refusal: the answer is final, repeating the call gives the same answer."""

    def __init__(self, status: int, problem: dict[str, Any] | None):
        self.status, self.problem = status, problem or {}
        super().__init__(f"{status} {self.problem.get('title', '')}: {self.problem.get('detail', '')}".strip())


class Invalid(Refused):
    pass


class Unauthorized(Refused):
    pass


class NotFound(Refused):
    pass


class Conflict(Refused):
    pass


class ServerError(ClientError):
    def __init__(self, status: int, problem: dict[str, Any] | None):
        self.status, self.problem = status, problem or {}
        super().__init__(f"{status} {self.problem.get('title', 'server error')}")


class Unreachable(ClientError):
    """The gateway could not be reached, or could not take the command (after every retry).
    `status` is the last HTTP status (502/503/504), or None for a network error."""

    def __init__(self, detail: str, status: int | None = None, problem: dict[str, Any] | None = None):
        self.status, self.problem = status, problem
        super().__init__(detail)


class StillAccepted(ClientError):
    """The command was accepted (202) and is durably queued; its final answer did not come in time.
    Ask again at `location`, or repeat the call with the same key."""

    def __init__(self, command_id: str, location: str):
        self.command_id, self.location = command_id, location
        super().__init__(f"command {command_id} accepted, no final answer yet ({location})")


class CircuitOpen(ClientError):
    """Recent SMS sends found the provider down: this one was not sent, try again after the cool-down."""


REFUSALS: dict[int, type[Refused]] = {400: Invalid, 422: Invalid, 401: Unauthorized, 403: Unauthorized,
                                      404: NotFound, 409: Conflict}


def refusal(status: int, problem: dict[str, Any] | None) -> Refused:
    return REFUSALS.get(status, Refused)(status, problem)
