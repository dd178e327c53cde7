"""APP_ENV=production (the default) refuses development shortcuts: the process exits non-zero at start with a line
on stderr naming the variable. Each process is started for real (`python -m services.<name>`) with a
production configuration that is right but for the one setting under test; nothing here reaches a server (the
refusal comes before any connection)."""

import os
import secrets
import subprocess
import sys

import pytest

from shared.settings import DEV_SECRET_FILE
from tests.support.stack import ROOT

REAL_JWT = secrets.token_hex(32)
REAL_TWILIO = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": secrets.token_hex(16), "TWILIO_BASE_URL": ""}
PRODUCTION = {
    "APP_ENV": "production",
    "AMQP_URL": "amqp://crm-platform:s3cret@127.0.0.1:1/",
    "DATABASE_URL": "postgresql://crm:s3cret@127.0.0.1:1/crm",
    "STARTUP_WAIT_SECONDS": "0",
    "JWT_SECRET": REAL_JWT,
    **REAL_TWILIO,
    "DEV_LOGIN": "false",
    "LOG_JSON": "true",
}


def start(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "TWILIO_", "DEV_LOGIN", "SANDBOX_"))}
    return subprocess.run(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env={**clean, **PRODUCTION, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


REFUSALS = [
    ("services.gateway", {"JWT_SECRET": "too-short"}, "JWT_SECRET"),
    ("services.gateway", {"JWT_SECRET": ""}, "JWT_SECRET"),
    ("services.gateway", {"TWILIO_AUTH_TOKEN": "sandbox-auth-token"}, "TWILIO_AUTH_TOKEN"),
    ("services.gateway", {"DEV_LOGIN": "true"}, "DEV_LOGIN"),
    ("services.gateway", {"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"}, "AMQP_URL"),
    (
        "services.sms",
        {"TWILIO_AUTH_TOKEN": "sandbox-auth-token", "TWILIO_BASE_URL": "http://127.0.0.1:8089"},
        "TWILIO_AUTH_TOKEN",
    ),
    ("services.sms", {"TWILIO_BASE_URL": "http://127.0.0.1:8089"}, "TWILIO_BASE_URL"),
    ("services.leads", {"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"}, "AMQP_URL"),
    ("services.twilio_sandbox", {}, "APP_ENV"),
]


@pytest.mark.parametrize(
    ("module", "bad", "variable"),
    REFUSALS,
    ids=[f"{m.split('.')[-1]}-{v}-{'-'.join(b) or 'itself'}" for m, b, v in REFUSALS],
)
def test_production_refuses_to_start_naming_the_variable(module: str, bad: dict[str, str], variable: str) -> None:
    done = start(module, **bad)
    assert done.returncode != 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if variable in line]
    assert lines and all("Traceback" not in line for line in done.stderr.splitlines()), done.stderr


def test_the_development_secret_is_refused_in_production() -> None:
    made = not DEV_SECRET_FILE.exists()
    if made:  # as `make run` makes it: once per checkout, never committed
        DEV_SECRET_FILE.write_text(secrets.token_urlsafe(48) + "\n")
    try:
        done = start("services.gateway", JWT_SECRET=DEV_SECRET_FILE.read_text().strip())
        assert done.returncode != 0 and "JWT_SECRET" in done.stderr and "development secret" in done.stderr
    finally:
        if made:
            DEV_SECRET_FILE.unlink()


SETTINGS = {
    "services.gateway": "services.gateway.settings:GatewaySettings",
    "services.sms": "services.sms.app:SmsSettings",
    "services.leads": "services.leads.app:LeadsSettings",
}


def settings_load(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Only the settings' check of `module`'s process (its `load`), without starting it."""
    path, name = SETTINGS[module].split(":")
    code = f"from shared.settings import load; from {path} import {name}; load({name}); print('started')"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "TWILIO_", "DEV_LOGIN", "SANDBOX_"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **PRODUCTION, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("module", sorted(SETTINGS))
def test_a_production_configuration_without_shortcuts_passes(module: str) -> None:
    """The baseline of the refusals above: each refusal is its one bad setting's."""
    done = settings_load(module)
    assert (done.returncode, done.stdout.strip()) == (0, "started"), done.stderr


def test_what_production_refuses_development_takes() -> None:
    done = settings_load(
        "services.gateway",
        APP_ENV="development",
        DEV_LOGIN="true",
        TWILIO_AUTH_TOKEN="sandbox-auth-token",
        AMQP_URL="amqp://guest:guest@127.0.0.1:1/",
    )
    assert (done.returncode, done.stdout.strip()) == (0, "started"), done.stderr


@pytest.mark.parametrize(
    ("module", "variable", "value"),
    [
        ("services.gateway", "JWT_SECRET", "change-me-" + "x" * 40),
        ("services.gateway", "TWILIO_AUTH_TOKEN", "change-me-twilio-auth-token"),
        ("services.sms", "TWILIO_ACCOUNT_SID", "change-me-twilio-account-sid"),
        ("services.leads", "DATABASE_URL", "postgresql://crm:change-me-postgres@127.0.0.1:1/crm"),
    ],
)
def test_the_env_examples_placeholders_are_refused(module: str, variable: str, value: str) -> None:
    done = settings_load(module, **{variable: value})
    assert done.returncode != 0 and variable in done.stderr and "placeholder" in done.stderr, done.stderr
