"""Lead rules: pure functions, no I/O. Refusals are `Rejected` with a problem body."""

import phonenumbers

# The moves table is a published contract (shared.contracts.leads.MOVES): the gateway serves the same one.
from shared.contracts.leads import LeadStatus as S
from shared.contracts.leads import can_move
from shared.problems import ForbiddenMove, StatusConflict, invalid


def forbidden_move(lead_id: str, current: S, target: S) -> ForbiddenMove:
    return ForbiddenMove(
        f"lead {lead_id} cannot move from {current} to {target}: its current status is {current}",
        currentStatus=str(current),
    )


def check_move(lead_id: str, current: S, target: S, expected: S | None = None) -> bool:
    """True when the lead must change, False when it already has the status; raises when refused."""
    if expected is not None and expected != current:
        raise StatusConflict(
            f"lead {lead_id} was expected to be {expected} but its current status is {current}",
            currentStatus=str(current),
        )
    if current == target:
        return False
    if not can_move(current, target):
        raise forbidden_move(lead_id, current, target)
    return True


def bulk_failure_reason(current: S | None, target: S) -> str | None:
    if current is None:
        return "not_found"
    if current != target and not can_move(current, target):
        return f"cannot move from {current} to {target}"
    return None


def normalize_phone(raw: str, default_region: str) -> str:
    """E.164; a number without a country code is read in `default_region`."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise invalid(f"phone {raw!r} is not a phone number", [{"field": "phone", "message": str(exc)}]) from None
    if not phonenumbers.is_valid_number(number):
        raise invalid(f"phone {raw!r} is not a valid number", [{"field": "phone", "message": "invalid phone number"}])
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
