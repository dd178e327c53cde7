"""crm_client: the Python client of the CRM buttons.

    async with crm_client.Client(url, token, offline_db="presses.db") as crm:
        lead = await crm.create_lead("Ada Lovelace", "+14155550100")

Every press has one idempotency key for all its retries; presses made while the
gateway cannot be reached wait in the offline queue (SQLite) and are replayed in
order; `subscribe()` resumes the event stream across reconnections.

A refusal is raised as its own class (`crm_client.problems.ForbiddenMove`, ...), generated from the
server's table; each is also one of the errors below (`Conflict`...), and all are `Rejected`.
"""

from crm_client import problems
from crm_client.client import Client
from crm_client.errors import (
    CircuitOpen,
    ClientError,
    Conflict,
    Invalid,
    NotFound,
    Refused,
    Rejected,
    ServerError,
    StillAccepted,
    Unauthorized,
    Unreachable,
)
from crm_client.live import Event, Reload, Resume
from crm_client.offline import Outcome, Queued

__all__ = [
    "CircuitOpen",
    "Client",
    "ClientError",
    "Conflict",
    "Event",
    "Invalid",
    "NotFound",
    "Outcome",
    "Queued",
    "Refused",
    "Rejected",
    "Reload",
    "Resume",
    "ServerError",
    "StillAccepted",
    "Unauthorized",
    "Unreachable",
    "problems",
]
