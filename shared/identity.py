"""Who may act for which organisation on the broker.

RabbitMQ checks a message's `user_id` property against the user of the connection that
published it: a message cannot claim another user. So a command's `user_id` names the system
that sent it, and the services take the organisation from there, not from a header anyone can set:

- the platform's own users (the gateway's and the services': AMQP_URL's user, and
  BROKER_TRUSTED_USERS) act for the organisation they name in `x-org-id`: the gateway has
  authenticated the person behind the request;
- an integrating system's user acts for its one organisation (BROKER_ORGS, `user:org,...`):
  without `x-org-id`, or with its own, the command is its organisation's; naming another is 403;
- anyone else, or a message with no `user_id`: 403, and nothing changes.

Events on `events` are taken only from the platform's own users (the outbox relays).
How an operator adds an integrating system: README, "Broker contract".
"""

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from shared.problems import Forbidden, invalid


def own_user(amqp_url: str) -> str:
    """The RabbitMQ user this process connects as (and so the `user_id` it must set)."""
    return unquote(urlsplit(amqp_url).username or "guest")


@dataclass(frozen=True)
class BrokerIdentity:
    trusted: frozenset[str]
    orgs: Mapping[str, str]

    @classmethod
    def of(cls, amqp_url: str, trusted_users: str = "", broker_orgs: str = "") -> "BrokerIdentity":
        trusted = {own_user(amqp_url), *(u.strip() for u in trusted_users.split(",") if u.strip())}
        orgs = dict(pair.strip().split(":", 1) for pair in broker_orgs.split(",") if pair.strip())
        return cls(frozenset(trusted), {user.strip(): org.strip() for user, org in orgs.items()})

    def org_of(self, user_id: str | None, header: object) -> str:
        """The organisation a message from `user_id` acts for; `header` is its `x-org-id` header, if any."""
        claimed = str(header) if header else None
        if user_id and user_id in self.trusted:
            if not claimed:
                raise invalid("the message lacks x-org-id")
            return claimed
        org = self.orgs.get(user_id or "")
        if org is None:
            raise Forbidden(
                f"broker user {user_id!r} may not send commands here (no user_id, or a user that is "
                "neither the platform's nor an integrating system's)"
                if user_id
                else "the message has no user_id: the broker user that sends it must set it"
            )
        if claimed and claimed != org:
            raise Forbidden(f"broker user {user_id!r} acts for organisation {org!r}, not {claimed!r}")
        return org

    def is_platform(self, user_id: str | None) -> bool:
        return bool(user_id) and user_id in self.trusted
