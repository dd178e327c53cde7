"""Every button and read of the API, collected from the contract modules (one row each).

The gateway's routes and OpenAPI document, the table it serves at GET /api/buttons (from which
the console builds its presses and reads, and keys its words by button and problem type), the
Python client's methods and the `crm` subcommands are made from these tuples; nothing else
lists a button.
"""

from shared.contracts import bookings, campaigns, documents, leads, proposals, sms
from shared.contracts.declare import Button, Read

BUTTONS: tuple[Button, ...] = (
    *leads.BUTTONS,
    *bookings.BUTTONS,
    *sms.BUTTONS,
    *campaigns.BUTTONS,
    *proposals.BUTTONS,
    *documents.BUTTONS,
)
READS: tuple[Read, ...] = (
    *leads.READS,
    *bookings.READS,
    *sms.READS,
    *campaigns.READS,
    *proposals.READS,
    *documents.READS,
)
SERVICES: tuple[str, ...] = (leads.SERVICE, bookings.SERVICE, sms.SERVICE, proposals.SERVICE, documents.SERVICE)
