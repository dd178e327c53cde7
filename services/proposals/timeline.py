"""A lead's deal timeline: one row per step (proposal sent, payment recorded, contract signed...),
typed like the event that announces it, written in the same transaction as the step (`step`).
The words of each row are pure functions of the event.
"""

from datetime import datetime

import asyncpg

from services.proposals import repository
from shared.contracts.envelope import Event, EventData
from shared.contracts.proposals import (
    ContractChanged,
    ContractSigned,
    ContractVoided,
    PaymentRecorded,
    PaymentRefunded,
    ProposalSent,
)
from shared.messages import Meta

# ISO 4217 currencies whose minor unit is not a hundredth.
EXPONENTS = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def money(amount_minor: int, currency: str) -> str:
    """`150000, "USD"` -> "1,500.00 USD": integer arithmetic only."""
    exponent = EXPONENTS.get(currency, 2)
    sign, amount_minor = ("-" if amount_minor < 0 else ""), abs(amount_minor)
    whole, fraction = divmod(amount_minor, 10**exponent)
    return f"{sign}{whole:,}{f'.{fraction:0{exponent}d}' if exponent else ''} {currency}"


def proposal_sent(e: ProposalSent) -> str:
    return (
        f"Proposal “{e.title}” sent: {money(e.amountMinor, e.currency)}, valid until {e.validUntil.date().isoformat()}"
    )


def proposal_accepted(title: str) -> str:
    return f"Proposal “{title}” accepted"


def proposal_declined(title: str, reason: str | None) -> str:
    return f"Proposal “{title}” declined" + (f": {reason}" if reason else "")


def payment_recorded(e: PaymentRecorded) -> str:
    return (
        f"Payment of {money(e.amountMinor, e.currency)} recorded ({e.method}, ref {e.externalReference}); "
        f"balance {money(e.balanceMinor, e.currency)}"
    )


def payment_refunded(e: PaymentRefunded, reference: str) -> str:
    return (
        f"Refund of {money(e.amountMinor, e.currency)} on payment ref {reference}; "
        f"balance {money(e.balanceMinor, e.currency)}"
    )


def contract_changed(e: ContractChanged, title: str) -> str:
    if isinstance(e, ContractSigned):
        return f"Contract for “{title}” signed by {e.signerName}"
    if isinstance(e, ContractVoided):
        return f"Contract for “{title}” voided: {e.reason}"
    return f"Contract for “{title}” {'drafted' if e.status == 'draft' else e.status}"


async def step(
    conn: asyncpg.Connection, meta: Meta, lead_id: str, at: datetime, data: EventData, summary: str, ref_id: str
) -> Event:
    """Append a step to the lead's timeline, in the command's transaction; the event that announces it."""
    await repository.append(conn, meta.org_id, lead_id, at, data.TYPE, summary, ref_id, meta.user_id)
    return meta.event(data)
