"""Lead rules: pure functions, no I/O. Refusals are `Rejected` with a problem body."""
import phonenumbers

from shared.contracts.leads import LeadStatus as S
from shared.retry import Rejected, invalid

PIPELINE = [S.new, S.contacted, S.qualified, S.proposal, S.won]
OPEN = {S.new, S.contacted, S.qualified, S.proposal}


def can_move(current: S, target: S) -> bool:
    """Forward along the pipeline (skipping allowed); any open status to lost; lost back to new; won is final."""
    if current == S.won:
        return False
    if target == S.lost:
        return current in OPEN
    if current == S.lost:
        return target == S.new
    return PIPELINE.index(target) > PIPELINE.index(current)


def forbidden_move(lead_id: str, current: S, target: S) -> Rejected:
    return Rejected(409, "Status change not allowed",
                    f"lead {lead_id} cannot move from {current} to {target}: its current status is {current}",
                    "/problems/forbidden-status-change", currentStatus=str(current))


def check_move(lead_id: str, current: S, target: S, expected: S | None = None) -> bool:
    """True when the lead must change, False when it already has the status; raises when refused."""
    if expected is not None and expected != current:
        raise Rejected(409, "Status changed meanwhile",
                       f"lead {lead_id} was expected to be {expected} but its current status is {current}",
                       "/problems/status-conflict", currentStatus=str(current))
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
