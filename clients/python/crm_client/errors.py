"""What a call can end in besides its answer.

    ClientError
    ├── Rejected (the gateway answered with a problem+json body)   status, type, title, detail, body
    │   ├── Refused (the gateway said no; never retried)
    │   │   ├── Invalid       400, 422
    │   │   ├── Unauthorized  401, 403
    │   │   ├── NotFound      404
    │   │   └── Conflict      409 (the state forbids it)
    │   └── ServerError       a final 5xx: a command parked after the service's retries, another 5xx not retried
    ├── Unreachable       network errors, 429/500/502/503/504 after every retry: safe to repeat with the same key
    ├── StillAccepted     202 followed until the deadline, no final answer yet (it is durably queued server-side)
    └── CircuitOpen       the SMS breaker is open: failed fast, nothing was sent

Each refusal of the server's table (shared/problems.py) has its class in crm_client/problems.py,
generated, under the one above that its status gives: `ForbiddenMove` is a `Conflict`,
`Unavailable` (503, retried first) an `Unreachable`. A problem of a type not in that table is
raised as the class of its status.
"""

from typing import Any


class ClientError(Exception):
    """Base of every error this package raises."""


class Rejected(ClientError):
    """An answer that is a problem (RFC 9457). `body` is all of it, with the fields a refusal adds
    (`errors`, `currentStatus`...); `problem` is the same dict, by its older name. On a class of
    crm_client/problems.py, `status`, `title` and `type` are also the table's row."""

    status: int = 0
    title: str = ""
    type: str = "about:blank"

    def __init__(self, status: int, problem: dict[str, Any] | None):
        self.status, self.body = status, problem or {}
        # A body from anywhere (a proxy's page, a foreign server): a field may be missing, null or huge.
        self.type = str(self.body.get("type") or self.type)[:500]
        self.title = str(self.body.get("title") or self.title)[:500]
        self.detail = str(self.body.get("detail") or "")[:2000]
        # Not super(): in a class that is also an Unreachable (Unavailable), that would be Unreachable's __init__.
        ClientError.__init__(self, f"{status} {self.title}: {self.detail}".strip())

    @property
    def problem(self) -> dict[str, Any]:
        """The body, by the name it had before `body`."""
        return self.body


class Refused(Rejected):
    """A domain refusal: the answer is final, repeating the call gives the same answer."""


class Invalid(Refused):
    pass


class Unauthorized(Refused):
    pass


class NotFound(Refused):
    pass


class Conflict(Refused):
    pass


class ServerError(Rejected):
    """A 5xx that no retry changes: the command was parked after the service's retries (503
    /problems/command-parked), a problem of the server's that is final (500 /problems/content-missing), or a
    5xx outside the retry table (501). A 500 without such a type is retried, then Unreachable."""


class Unreachable(ClientError):
    """The gateway could not be reached, or could not take the command (after every retry).
    `status` is the last HTTP status (429, 500, 502, 503, 504), or None for a network error."""

    def __init__(self, detail: str, status: int | None = None, problem: dict[str, Any] | None = None):
        self.status, self._problem = status, problem
        super().__init__(detail)

    @property
    def problem(self) -> dict[str, Any] | None:
        """The last answer's problem body, if it had one."""
        return self._problem


class StillAccepted(ClientError):
    """The command was accepted (202) and is durably queued; its final answer did not come in time.
    Ask again at `location`, or repeat the call with the same key."""

    def __init__(self, command_id: str, location: str):
        self.command_id, self.location = command_id, location
        super().__init__(f"command {command_id} accepted, no final answer yet ({location})")


class CircuitOpen(ClientError):
    """Recent SMS sends found the provider down: this one was not sent, try again after the cool-down."""


REFUSALS: dict[int, type[Refused]] = {
    400: Invalid,
    422: Invalid,
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
}


def refusal(status: int, problem: dict[str, Any] | None) -> Refused:
    return REFUSALS.get(status, Refused)(status, problem)
