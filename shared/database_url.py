"""DATABASE_URL: one PostgreSQL server, or several (a primary and its standbys) tried in order.

asyncpg's (and libpq's) URL form: hosts comma-separated, each with its own port, and `target_session_attrs`
saying which of them a connection may stay on. With `read-write` a connection skips a standby (or any server
that refuses writes) and moves to the next host; a host that refuses the connection, or is starting up or
shutting down, is skipped too. asyncpg's connect timeout covers the whole list, not each host.

    postgresql://user:password@10.0.0.1:5432,10.0.0.2:5432/crm?target_session_attrs=read-write

`parse` checks a URL the way asyncpg will read it, and says what is wrong without repeating the password
(settings.py refuses a bad one at start); `redacted` is the URL to show in a message or a log line.
See docs/postgres-failover.md for what a promotion does to the exactly-once argument.
"""

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

SCHEMES = ("postgresql", "postgres")
# asyncpg's SessionAttribute values (asyncpg/connect_utils.py; a unit test keeps the two the same).
TARGET_SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
# The values that let a connection settle on a standby: no use to a process that writes (every one here does).
STANDBY_ATTRS = ("standby", "prefer-standby", "read-only")
# The values that keep a connection off a standby: what a URL with several hosts needs.
PRIMARY_ATTRS = ("read-write", "primary")
DEFAULT_PORT = 5432
FORM = "postgresql://user:password@host[:port][,host[:port]...]/database[?target_session_attrs=read-write]"
_IPV6 = re.compile(r"\[([^\]]+)\](?::([^:]*))?")
_PASSWORD_PARAMETER = re.compile(r"(^|&)((?:ssl)?password=)[^&]*")


@dataclass(frozen=True)
class DatabaseUrl:
    hosts: tuple[tuple[str, int], ...]  # in the order tried; empty: asyncpg's defaults (PGHOST, the local socket)
    database: str
    target_session_attrs: str | None  # None: not in the URL (asyncpg then reads PGTARGETSESSIONATTRS, else any)

    @property
    def several(self) -> bool:
        return len(self.hosts) > 1


def parse(url: str) -> DatabaseUrl:
    """What `url` names, read as asyncpg reads it; ValueError saying what is wrong (never with the password)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced [ of an IPv6 address
        raise ValueError(f"not a URL ({exc}); expected {FORM}") from None
    if parts.scheme not in SCHEMES:
        raise ValueError(f"expected {FORM}")
    try:  # as asyncpg reads it (strictly): a field without "=" stops its connect
        query = {k: v[-1] for k, v in parse_qs(parts.query, strict_parsing=True).items()} if parts.query else {}
    except ValueError:
        raise ValueError("its query (after ?) is not name=value pairs joined by &") from None
    auth, _, hostlist = parts.netloc.rpartition("@")
    if "@" in auth:  # asyncpg splits at the first @: the password would become part of a host name
        raise ValueError("an @ in the user or password must be written %40")
    if hostlist:
        hosts = tuple(_hostspec(spec) for spec in _split(hostlist))
    elif "host" in query:  # postgresql:///crm?host=/var/run/postgresql (read only when the URL names no host)
        names = _split(query["host"])
        ports = _ports(query.get("port", ""), len(names))
        hosts = tuple(zip(names, ports, strict=True))
    else:
        hosts = ()
    attrs = query.get("target_session_attrs")
    if attrs is not None and attrs not in TARGET_SESSION_ATTRS:
        raise ValueError(f"target_session_attrs={attrs!r} is not one of {', '.join(TARGET_SESSION_ATTRS)}")
    database = unquote(parts.path[1:]) if parts.path else query.get("dbname", query.get("database", ""))
    return DatabaseUrl(hosts, database, attrs)


def _split(hostlist: str) -> list[str]:
    specs = hostlist.split(",")
    if any(not spec for spec in specs):
        raise ValueError(f"an empty host in the host list {hostlist!r} (hosts are separated by single commas)")
    return specs


def _hostspec(spec: str) -> tuple[str, int]:
    if spec.startswith("["):
        match = _IPV6.fullmatch(spec)
        if match is None:
            raise ValueError(f"{spec!r} is not an IPv6 address written [address] or [address]:port")
        host, port = match.group(1), match.group(2) or ""
    else:
        host, _, port = spec.partition(":")
        host = unquote(host)  # %2Fvar%2Frun%2Fpostgresql: a socket directory
    if not host:
        raise ValueError(f"a host is missing in {spec!r}")
    return host, _port(unquote(port), spec) if port else DEFAULT_PORT


def _ports(given: str, count: int) -> list[int]:
    if not given:
        return [DEFAULT_PORT] * count
    ports = [_port(p, given) for p in given.split(",")]
    if len(ports) == 1:
        return ports * count
    if len(ports) != count:
        raise ValueError(f"{len(ports)} ports for {count} hosts")
    return ports


def _port(port: str, where: str) -> int:
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"the port in {where!r} is not a number from 1 to 65535")
    return int(port)


def with_database(url: str, database: str) -> str:
    """`url` naming another database of the same servers (its hosts and parameters kept)."""
    parts = urlsplit(url)
    return _join(parts.scheme, parts.netloc, f"/{database}", parts.query)


def redacted(url: str) -> str:
    """`url` with the password in it shown as *** (in the user part, or a password= parameter): for a message.
    Any URL (amqp:// too); one that cannot be read is shown by its scheme alone."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.partition(":")[0] + "://***"
    auth, at, hosts = parts.netloc.rpartition("@")
    if at:
        user, colon, _ = auth.partition(":")
        netloc = f"{user}:***@{hosts}" if colon else f"{user}@{hosts}"
    else:
        netloc = parts.netloc
    query = _PASSWORD_PARAMETER.sub(r"\1\2***", parts.query)
    return _join(parts.scheme, netloc, parts.path, query)


def _join(scheme: str, netloc: str, path: str, query: str) -> str:
    """(urlunsplit drops the // of a URL without a host: postgresql:///crm?host=/var/run/postgresql)"""
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")
