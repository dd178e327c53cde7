"""Whose presses these are: the scope of the offline queue's rows, the JavaScript SDK's rule.

    scope = (deployment, organisation, user)
    deployment = the token's `iss` claim when it has one, else the gateway URL's origin

The claims are read without checking the signature: only to keep identities apart in one file; the
gateway is the one that checks the token. With an issuer, a press queued through one gateway is
replayed through another of the same deployment (a failover, `localhost` or `127.0.0.1`); without
one, the origin is all there is, and `http://localhost:8080`, `http://127.0.0.1:8080` and
`http://[::1]:8080` are three origins, as a browser says.
"""

import base64
import ipaddress
import json
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class Scope:
    deployment: str
    org: str | None  # None: the token did not say (such a scope never matches an identity)
    user: str | None

    @property
    def key(self) -> str:
        """As the queue stores it: a JSON array, which no row of the old format ("URL\\norg\\nuser") starts like."""
        return json.dumps([self.deployment, self.org, self.user], separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def parse(cls, stored: str) -> "Scope":
        """A stored scope, of either format."""
        read = _json_list(stored) if stored.startswith("[") else None
        return cls(*read) if read is not None else legacy(stored)

    def same_identity(self, other: "Scope") -> bool:
        """The same organisation and user, both known: what `flush --all-scopes` asks before sending a row."""
        return self.org is not None and self.user is not None and (self.org, self.user) == (other.org, other.user)


def _json_list(stored: str) -> tuple[str, str | None, str | None] | None:
    try:
        deployment, org, user = json.loads(stored)
    except ValueError:
        return None
    return (str(deployment), _text(org), _text(user))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def origin(url: str) -> str:
    """scheme://host[:port] as a browser's `URL.origin` says it: scheme and host lower-cased, an IPv6 host
    in brackets and compressed, the scheme's default port left out. A URL with no host: itself, stripped."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.hostname:
        return url.strip().rstrip("/")
    try:
        port = parts.port
    except ValueError:  # a port that is not one: the URL is wrong, but its rows must still be kept apart
        return url.strip().rstrip("/").lower()
    scheme, host = parts.scheme.lower(), _host(parts.hostname)  # hostname: lower-cased, without brackets
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS.get(scheme)) else f"{scheme}://{host}:{port}"


def _host(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        with suppress(UnicodeError):
            return host if host.isascii() else host.encode("idna").decode("ascii")
        return host
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def claims(token: str) -> dict[str, Any]:
    """The token's payload, unchecked; {} when it is not a JWT."""
    try:
        payload = token.split(".")[1]
        read = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return read if isinstance(read, dict) else {}


def scope_of(url: str, token: str) -> Scope:
    """The scope of the presses made with this gateway URL and token."""
    said = claims(token)
    return Scope(_text(said.get("iss")) or origin(url), _text(said.get("org")), _text(said.get("sub")))


# The old format wrote a claim it could not read as "?" and a missing one as "None".
_UNKNOWN = {"?", "None"}


def legacy(stored: str) -> Scope:
    """A scope of the old format, "URL\\norg\\nuser" (before deployments), as (the URL's origin, org, user). One
    that is not even that is kept as its own deployment, with no identity: listed, never replayed by itself."""
    parts = stored.split("\n")
    if len(parts) != 3:
        return Scope(stored, None, None)
    url, org, user = parts
    return Scope(origin(url), None if org in _UNKNOWN else org, None if user in _UNKNOWN else user)
