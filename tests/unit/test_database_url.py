"""DATABASE_URL with one host or several (shared/database_url.py): read as asyncpg reads it, refused with a line
naming the variable when asyncpg could not use it or a process could settle on a standby, never shown with its
password."""

import pytest
from asyncpg import connect_utils
from pydantic import ValidationError

from shared import database_url
from shared.settings import CommonSettings, load

PASSWORD = "pg-s3cret"
MULTI = f"postgresql://crm:{PASSWORD}@127.0.0.1:5432,127.0.0.1:5433/crm?target_session_attrs=read-write"


def asyncpg_reads(url: str) -> tuple[list[tuple[str, int]], str]:
    """The addresses asyncpg would try, in order (a socket as its directory and port), and its session attrs."""
    addrs, params = connect_utils._parse_connect_dsn_and_args(
        dsn=url,
        **dict.fromkeys(
            ("host", "port", "user", "password", "passfile", "database", "ssl", "service", "servicefile"), None
        ),
        **dict.fromkeys(("direct_tls", "server_settings", "target_session_attrs", "krbsrvname", "gsslib"), None),
    )
    hosts = [tuple(addr) if isinstance(addr, tuple) else tuple(addr.rsplit("/.s.PGSQL.", 1)) for addr in addrs]
    return [(host, int(port)) for host, port in hosts], params.target_session_attrs.value


def test_the_session_attributes_are_asyncpgs() -> None:
    assert tuple(a.value for a in connect_utils.SessionAttribute) == database_url.TARGET_SESSION_ATTRS


@pytest.mark.parametrize(
    "url",
    [
        MULTI,
        "postgresql://postgres@127.0.0.1:5432/crm",
        "postgres://crm@db1,db2:6543,db3/crm?target_session_attrs=primary&sslmode=prefer",
        "postgresql://crm@[::1]:5433,127.0.0.1/crm?target_session_attrs=read-write",
        "postgresql://crm@%2Fvar%2Frun%2Fpostgresql:5433/crm",
        "postgresql:///crm?host=/var/run/postgresql,db2&port=5432,5433&target_session_attrs=read-write",
        "postgresql://crm:p%40ss@db1:5432,db2:5432/crm?target_session_attrs=any",
    ],
)
def test_hosts_are_read_as_asyncpg_reads_them(url: str) -> None:
    parsed = database_url.parse(url)
    hosts, attrs = asyncpg_reads(url)
    assert list(parsed.hosts) == hosts
    assert (parsed.target_session_attrs or "any") == attrs


def test_a_multi_host_url() -> None:
    parsed = database_url.parse(MULTI)
    assert parsed.hosts == (("127.0.0.1", 5432), ("127.0.0.1", 5433))
    assert (parsed.database, parsed.target_session_attrs, parsed.several) == ("crm", "read-write", True)
    admin = database_url.with_database(MULTI, "postgres")
    assert admin == MULTI.replace("/crm?", "/postgres?")  # the same hosts and parameters, another database


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("mysql://crm@db/crm", "expected postgresql://"),
        ("postgresql://crm@db1,,db2/crm?target_session_attrs=read-write", "an empty host"),
        ("postgresql://crm@db1,db2,/crm?target_session_attrs=read-write", "an empty host"),
        ("postgresql://crm@db1:5432,db2:543x/crm?target_session_attrs=read-write", "not a number from 1 to 65535"),
        ("postgresql://crm@db1:70000/crm", "not a number from 1 to 65535"),
        ("postgresql://crm@:5432/crm", "a host is missing"),
        ("postgresql://crm@[::1/crm", "not a URL"),
        ("postgresql://crm@[::1]x/crm", "not an IPv6 address"),
        ("postgresql://crm@db/crm?target_session_attrs=readwrite", "is not one of any, primary"),
        ("postgresql://crm@db/crm?target_session_attrs", "not name=value"),
        (f"postgresql://crm:{PASSWORD}@x@db/crm", "must be written %40"),
        ("postgresql:///crm?host=a,b,c&port=1,2", "2 ports for 3 hosts"),
    ],
)
def test_a_malformed_url_is_refused_saying_why(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as refused:
        database_url.parse(url)
    assert PASSWORD not in str(refused.value)


def settings_with(monkeypatch: pytest.MonkeyPatch, url: str) -> CommonSettings:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("APP_ENV", "development")
    return load(CommonSettings)


def test_settings_take_a_multi_host_url(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_with(monkeypatch, MULTI).database_url == MULTI
    assert PASSWORD not in repr(settings_with(monkeypatch, MULTI))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (MULTI.replace(":5433", ":5433,"), "an empty host"),
        (MULTI.replace("read-write", "read_write"), "is not one of"),
        # Several hosts and nothing to keep a connection off a standby: its writes would fail.
        (MULTI.replace("?target_session_attrs=read-write", ""), "2 hosts without target_session_attrs=read-write"),
        (MULTI.replace("read-write", "any"), "2 hosts without target_session_attrs=read-write"),
        # Every process writes: a setting that seeks a standby is refused, with one host too.
        (f"postgresql://crm:{PASSWORD}@db/crm?target_session_attrs=prefer-standby", "settle on a standby"),
        (MULTI.replace("read-write", "read-only"), "settle on a standby"),
        ("postgresql+psycopg2://crm@db/crm", "expected postgresql://"),
    ],
)
def test_settings_refuse_a_bad_url_naming_it_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, why: str
) -> None:
    with pytest.raises(SystemExit):
        settings_with(monkeypatch, url)
    err = capsys.readouterr().err
    assert err.startswith("invalid setting DATABASE_URL: ") and why in err, err
    assert PASSWORD not in err


def test_a_validation_error_does_not_carry_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", MULTI.replace("read-write", "nope"))
    with pytest.raises(ValidationError) as refused:
        CommonSettings()
    assert PASSWORD not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (MULTI, "postgresql://crm:***@127.0.0.1:5432,127.0.0.1:5433/crm?target_session_attrs=read-write"),
        ("postgresql://postgres@127.0.0.1:5432/crm", "postgresql://postgres@127.0.0.1:5432/crm"),
        (
            f"postgresql:///crm?host=db1,db2&password={PASSWORD}&sslpassword={PASSWORD}&target_session_attrs=primary",
            "postgresql:///crm?host=db1,db2&password=***&sslpassword=***&target_session_attrs=primary",
        ),
        (f"postgresql://crm:{PASSWORD}@x@db/crm", "postgresql://crm:***@db/crm"),  # (refused by parse, still hidden)
        (f"amqp://crm:{PASSWORD}@127.0.0.1:5672/", "amqp://crm:***@127.0.0.1:5672/"),
        (f"postgresql://crm:{PASSWORD}@[::1/crm", "postgresql://***"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert database_url.redacted(url) == shown


def test_another_database_of_a_url_without_a_host() -> None:
    url = "postgresql:///crm?host=/var/run/postgresql,db2&port=5432&target_session_attrs=read-write"
    admin = database_url.with_database(url, "postgres")
    assert admin == url.replace("/crm?", "/postgres?")
    assert asyncpg_reads(admin) == asyncpg_reads(url)
