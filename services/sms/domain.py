"""SMS rules: templates, opt-out keywords, forward-only statuses, how a send ended. Pure, no I/O."""

import re
from datetime import datetime
from enum import StrEnum

from shared.contracts.sms import MAX_LENGTH
from shared.contracts.sms import SmsStatus as S
from shared.problems import OptedOut, invalid

FIELD = re.compile(r"{{(.*?)}}", re.DOTALL)  # anything between braces: a name we cannot fill is refused
FIELDS = ("first_name", "last_name", "name", "phone")
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT", "OPTOUT"}
START_WORDS = {"START", "YES", "UNSTOP"}
RANK = {S.queued: 0, S.sending: 1, S.sent: 2, S.delivered: 3, S.undelivered: 3, S.failed: 3}
FINAL = {S.sent, S.delivered, S.undelivered, S.failed}
TOOK_IT = (S.sent, S.delivered, S.undelivered)  # once the provider accepted it: the one SMS went out


class SendOutcome(StrEnum):
    """How a send ended, as `Sender.perform` found it (its `record` writes it down)."""

    sent = "sent"  # the provider accepted it (now, or in an attempt found again: reconciled)
    failed = "failed"  # the provider refused it for good
    opted_out = "opted_out"  # the provider refused it: the number opted out there (21610)
    stopped = "stopped"  # the number opted out here after the SMS was queued: nothing sent
    done = "done"  # the SMS was final already (a redelivery): nothing to do


def template_fields(body: str) -> list[str]:
    """The fields a template uses; 422 naming any this service cannot fill, or a brace left open."""
    fields = list(dict.fromkeys(name.strip() for name in FIELD.findall(body)))
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise invalid(
            f"unknown template field(s) {', '.join(map(repr, unknown))}; known: {', '.join(FIELDS)}",
            [{"field": "body", "message": f"unknown field {f!r}"} for f in unknown],
        )
    if "{{" in FIELD.sub("", body) or "}}" in FIELD.sub("", body):
        raise invalid("the template has an unmatched {{ or }}", [{"field": "body", "message": "unmatched braces"}])
    return fields


def render(body: str, name: str, phone: str) -> str:
    first, _, last = name.partition(" ")
    values = {"first_name": first, "last_name": last, "name": name, "phone": phone}
    template_fields(body)  # refuses a field it could not fill
    text = FIELD.sub(lambda m: values[m.group(1).strip()], body)
    return checked_message(text)


def checked_message(text: str) -> str:
    text = text.strip()
    if not 1 <= len(text) <= MAX_LENGTH:
        raise invalid(
            f"the message must be 1 to {MAX_LENGTH} characters after trimming; it is {len(text)}",
            [{"field": "message", "message": "length out of range"}],
        )
    return text


def confirmation_text(name: str, starts_at: datetime) -> str:
    when = starts_at.strftime("%a %d %b %Y at %H:%M UTC")
    return f"Hi {name.partition(' ')[0]}, your appointment on {when} is confirmed. Reply STOP to opt out."


def keyword(body: str) -> bool | None:
    """True: opt out; False: opt back in; None: an ordinary message."""
    word = " ".join(body.split()).upper()
    if word in STOP_WORDS:
        return True
    if word in START_WORDS:
        return False
    return None


def moves_forward(current: S, new: S) -> bool:
    """A late or repeated callback never moves a status back (nor sideways between final ones)."""
    return RANK[new] > RANK[current]


def opted_out(lead_id: str) -> OptedOut:
    return OptedOut(f"lead {lead_id} has opted out of SMS; nothing was sent")
