"""crm_client: the Python client of the CRM buttons.

    async with crm_client.Client(url, token, offline_db="presses.db") as crm:
        lead = await crm.create_lead("Ada Lovelace", "+14155550100")

Every press has one idempotency key for all its retries; presses made while the
gateway cannot be reached wait in the offline queue (SQLite) and are replayed in
order; `subscribe()` resumes the event stream across reconnections.
"""
from crm_client.client import Client
from crm_client.errors import (
    CircuitOpen,
    ClientError,
    Conflict,
    Invalid,
    NotFound,
    Refused,
    ServerError,
    StillAccepted,
    Unauthorized,
    Unreachable,
)
from crm_client.live import Event, Reload, Resume
from crm_client.offline import Outcome, Queued

__all__ = ["CircuitOpen", "Client", "ClientError", "Conflict", "Event", "Invalid", "NotFound", "Outcome", "Queued",
           "Refused", "Reload", "Resume", "ServerError", "StillAccepted", "Unauthorized", "Unreachable"]
