import time

import jwt
import pytest

from services.gateway.auth import BadToken, decode, issue
from services.gateway.settings import GatewaySettings
from shared.settings import ServiceSettings, load

SECRET = "s" * 64


def test_a_token_round_trips() -> None:
    principal = decode(issue(SECRET, "org-1", "user-1"), SECRET)
    assert (principal.org, principal.user) == ("org-1", "user-1")


@pytest.mark.parametrize("token", [
    jwt.encode({"sub": "u", "org": "o", "exp": int(time.time()) - 10}, SECRET, algorithm="HS256"),  # expired
    jwt.encode({"sub": "u", "org": "o", "exp": int(time.time()) + 60}, "t" * 64, algorithm="HS256"),  # other key
    jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),  # no org
    jwt.encode({"org": "o", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),  # no sub
    jwt.encode({"sub": "u", "org": "o"}, SECRET, algorithm="HS256"),  # no exp
    jwt.encode({"sub": "u", "org": "o", "exp": int(time.time()) + 60}, SECRET, algorithm="HS512"),  # other alg
    "not-a-token",
])
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
    assert load(ServiceSettings).retry_delays == [0.5, 2, 10]
