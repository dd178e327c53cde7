import time

import jwt
import pytest

from services.gateway.auth import BadToken, TokenRules, decode, issue
from services.gateway.settings import GatewaySettings
from services.sms.app import SmsSettings
from shared.settings import ServiceSettings, load

SECRET = "s" * 64


def test_a_token_round_trips() -> None:
    principal = decode(issue(SECRET, "org-1", "user-1"), SECRET)
    assert (principal.org, principal.user) == ("org-1", "user-1")


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(
            {"sub": "u", "org": "o", "exp": int(time.time()) - 40}, SECRET, algorithm="HS256"
        ),  # expired (past the 30 s leeway)
        jwt.encode({"sub": "u", "org": "o", "exp": int(time.time()) + 60}, "t" * 64, algorithm="HS256"),  # other key
        jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),  # no org
        jwt.encode({"org": "o", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),  # no sub
        jwt.encode({"sub": "u", "org": "o"}, SECRET, algorithm="HS256"),  # no exp
        jwt.encode({"sub": "u", "org": "o", "exp": int(time.time()) + 60}, SECRET, algorithm="HS512"),  # other alg
        "not-a-token",
    ],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(BadToken):
        decode(token, SECRET)


def test_missing_secret_names_the_variable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    with pytest.raises(SystemExit):
        load(GatewaySettings)
    assert "JWT_SECRET" in capsys.readouterr().err


def test_bad_url_names_the_variable(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AMQP_URL", "http://nope")
    with pytest.raises(SystemExit):
        load(ServiceSettings)
    assert "AMQP_URL" in capsys.readouterr().err


def test_retry_delays_come_from_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRY_DELAYS", "0.5, 2,10")
    monkeypatch.setenv("APP_ENV", "development")  # (AMQP_URL's default user is guest)
    assert load(ServiceSettings).retry_delays == [0.5, 2, 10]


def claims(**extra: object) -> dict:
    now = int(time.time())
    return {"sub": "u", "org": "o", "iat": now, "exp": now + 3600, **extra}


def later(**offsets: int) -> dict:
    """Claims with times offset from the moment the test runs (not the moment the tests were collected)."""
    now = int(time.time())
    return claims(iss="crm-dev", aud="crm", **{name: now + offset for name, offset in offsets.items()})


RULES = TokenRules(SECRET, issuer="crm-dev", audience="crm", leeway=30, max_lifetime=24 * 3600, require_iat=True)


@pytest.mark.parametrize(
    ("token_claims", "why"),
    [
        (claims(), "iss"),  # neither iss nor aud
        (claims(iss="crm-dev"), "aud"),
        (claims(iss="someone-else", aud="crm"), "issuer"),
        (claims(iss="crm-dev", aud="another-app"), "audience"),
        ({"exp": 25 * 3600}, "longer than 24 h"),
        ({**claims(iss="crm-dev", aud="crm"), "iat": None}, "iat"),  # no iat, in production
        ({"exp": -40}, "expired"),  # past the leeway
        ({"iat": 120}, "not valid yet"),  # issued in the future
    ],
)
def test_token_rules(token_claims: dict, why: str) -> None:
    if "sub" not in token_claims:  # offsets: made now
        token_claims = later(**token_claims)
    token = jwt.encode({k: v for k, v in token_claims.items() if v is not None}, SECRET, algorithm="HS256")
    with pytest.raises(BadToken) as refused:
        decode(token, RULES)
    assert why in str(refused.value)


def test_a_token_by_the_rules_and_the_clocks_leeway_pass() -> None:
    now = int(time.time())
    late = jwt.encode(claims(iss="crm-dev", aud="crm", iat=now - 3600, exp=now - 10), SECRET, algorithm="HS256")
    assert decode(late, RULES).org == "o"  # expired 10 s ago: within the 30 s leeway
    fresh = issue(SECRET, "o", "u", 3600, issuer="crm-dev", audience="crm")
    assert decode(fresh, RULES).user == "u"


def test_without_iat_a_token_passes_in_development_only() -> None:
    token = jwt.encode({"sub": "u", "org": "o", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    assert decode(token, TokenRules(SECRET)).user == "u"
    with pytest.raises(BadToken, match="iat"):
        decode(token, TokenRules(SECRET, require_iat=True))


def test_secrets_never_appear_in_a_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "j" * 40)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "t0k3n-of-twilio")
    monkeypatch.setenv("AMQP_URL", "amqp://crm:amqp-pass@127.0.0.1/")
    monkeypatch.setenv("DATABASE_URL", "postgresql://crm:pg-pass@127.0.0.1/crm")
    monkeypatch.setenv("APP_ENV", "development")
    for settings in (load(GatewaySettings), load(SmsSettings)):
        shown = repr(settings) + str(settings)
        assert not any(secret in shown for secret in ("j" * 40, "t0k3n-of-twilio", "amqp-pass", "pg-pass")), shown
