"""deploy/docker-compose.yml is production-shaped, as a real Compose resolves it (Debian's docker-compose 1.29:
it reads and checks the file without an engine). With deploy/.env.example as the env file:

- every process runs with APP_ENV=production; the Twilio sandbox, which refuses production, only in the `dev` profile;
- the broker's and the database's credentials come from the env file (no guest, no trust), and a missing one
  stops `config` with an error that names it;
- only the gateway is published, on 127.0.0.1 unless GATEWAY_BIND says otherwise;
- the SMS service talks to the real Twilio, unless the development override (deploy/docker-compose.dev.yml) says so.

`make test` installs docker-compose when it is missing; without it these tests fail with the command to run.
"""

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
SANDBOX = "twilio-sandbox"
REQUIRED = [
    "RABBITMQ_USER",
    "RABBITMQ_PASSWORD",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "JWT_SECRET",
    "PUBLIC_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
]
SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|_SID$")
Config = dict[str, Any]


def docker_compose() -> str:
    binary = shutil.which("docker-compose")
    if binary is None and shutil.which("apt-get") is None:
        pytest.skip("docker-compose is not installed, and this machine has no apt-get to install it")
    if binary is None:
        pytest.fail("docker-compose is not installed: apt-get install -y docker-compose (make test does it)")
    return binary


def compose(env_file: Path, *args: str, files: tuple[Path, ...] = (COMPOSE,)) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with only `env_file` for variables: the caller's environment would win over it
    (make exports JWT_SECRET, AMQP_URL and APP_ENV for its own processes)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    command = [docker_compose(), *(arg for f in files for arg in ("-f", str(f))), "--env-file", str(env_file), *args]
    return subprocess.run([*command, "config"], env=env, capture_output=True, text=True, timeout=60, check=False)


def resolve(env_file: Path, *args: str, files: tuple[Path, ...] = (COMPOSE,)) -> Config:
    result = compose(env_file, *args, files=files)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@cache
def resolved(profile: str | None = None) -> Config:
    return resolve(ENV_EXAMPLE, *(("--profile", profile) if profile else ()))


def example_values() -> dict[str, str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def env(service: Config) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def default_profile(config: Config) -> dict[str, Config]:
    """Compose 1.29 lists every service whatever the profiles; Compose v2 only the active ones."""
    return {name: service for name, service in config["services"].items() if not service.get("profiles")}


def published(service: Config) -> list[tuple[str, str]]:
    """(host address, host port) of each published port, from the short form or the long one."""
    ports = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            ports.append((port.get("host_ip") or "0.0.0.0", str(port.get("published", ""))))
        else:
            parts = str(port).rsplit(":", 2)
            ports.append(
                ("0.0.0.0", parts[0])
                if len(parts) == 2
                else (parts[0], parts[1])
                if len(parts) == 3
                else ("0.0.0.0", "")
            )
    return ports


@pytest.mark.parametrize("profile", [None, "dev"])
def test_the_file_resolves_with_the_example_env_file(profile: str | None) -> None:
    assert resolved(profile)["services"]


@pytest.mark.parametrize("profile", [None, "dev"])
def test_every_process_runs_in_production(profile: str | None) -> None:
    services = default_profile(resolved(profile))
    assert {"rabbitmq", "postgres", "gateway", "leads", "bookings", "sms", "proposals", "documents"} <= set(services)
    assert {name: env(s).get("APP_ENV") for name, s in services.items()} == dict.fromkeys(services, "production")


def test_the_sandbox_is_only_in_the_dev_profile_and_nothing_needs_it() -> None:
    sandbox = resolved("dev")["services"][SANDBOX]
    assert sandbox.get("profiles") == ["dev"]
    # It refuses production (a fake of Twilio with published credentials): in development, where it exists.
    assert env(sandbox)["APP_ENV"] == "development"
    assert "ports" not in sandbox
    profiled = {name for name, s in resolved()["services"].items() if s.get("profiles")}
    assert profiled <= {SANDBOX}
    for name, service in default_profile(resolved()).items():
        assert SANDBOX not in yaml.safe_dump(service), f"{name} depends on or points at the sandbox"


def test_only_the_gateway_is_published_and_on_loopback() -> None:
    ports = {name: published(s) for name, s in resolved("dev")["services"].items() if s.get("ports")}
    assert ports == {"gateway": [("127.0.0.1", "8080")]}


def test_the_gateway_address_is_a_setting(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(ENV_EXAMPLE.read_text() + "GATEWAY_BIND=0.0.0.0\nGATEWAY_PORT=9090\n")
    assert published(resolve(env_file)["services"]["gateway"]) == [("0.0.0.0", "9090")]


def test_the_broker_has_the_env_file_user_and_never_guest() -> None:
    values, services = example_values(), resolved("dev")["services"]
    urls = {name: urlsplit(env(s)["AMQP_URL"]) for name, s in services.items() if "AMQP_URL" in env(s)}
    assert set(urls) >= {"gateway", "leads", "bookings", "sms", "proposals", "documents"}
    for name, url in urls.items():
        assert url.username != "guest" and url.password, f"{name}: {url.geturl()}"
    rabbitmq = env(services["rabbitmq"])
    user = (rabbitmq.get("RABBITMQ_DEFAULT_USER"), rabbitmq.get("RABBITMQ_DEFAULT_PASS"))
    assert user == (values["RABBITMQ_USER"], values["RABBITMQ_PASSWORD"])
    for name, url in urls.items():
        assert (url.username, url.password, url.hostname) == (*user, "rabbitmq"), name


def test_the_database_has_a_password_and_no_trust() -> None:
    values, services = example_values(), resolved()["services"]
    postgres = env(services["postgres"])
    assert postgres.get("POSTGRES_PASSWORD")
    # initdb trusts the socket and 127.0.0.1 unless told (--auth-local, --auth-host); the image's line for every
    # other address takes POSTGRES_HOST_AUTH_METHOD.
    assert postgres.get("POSTGRES_HOST_AUTH_METHOD") == "scram-sha-256"
    assert set(postgres.get("POSTGRES_INITDB_ARGS", "").split()) >= {
        "--auth-local=scram-sha-256",
        "--auth-host=scram-sha-256",
    }
    assert (postgres.get("POSTGRES_USER"), postgres["POSTGRES_PASSWORD"]) == (
        values["POSTGRES_USER"],
        values["POSTGRES_PASSWORD"],
    )
    for name, service in services.items():
        if "DATABASE_URL" in env(service):
            url = urlsplit(env(service)["DATABASE_URL"])
            assert (url.username, url.password) == (values["POSTGRES_USER"], values["POSTGRES_PASSWORD"]), name


def test_sms_talks_to_the_real_twilio_with_the_env_file_credentials() -> None:
    values, services = example_values(), resolved()["services"]
    sms = env(services["sms"])
    assert sms["TWILIO_BASE_URL"] == ""
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER", "PUBLIC_URL"):
        assert sms[name] == values[name], name
    gateway = env(services["gateway"])
    assert (gateway["TWILIO_AUTH_TOKEN"], gateway["PUBLIC_URL"]) == (values["TWILIO_AUTH_TOKEN"], values["PUBLIC_URL"])
    assert gateway["JWT_SECRET"] == values["JWT_SECRET"]
    assert gateway.get("DEV_LOGIN", "false") == "false"


def test_the_required_variables_are_the_listed_ones() -> None:
    assert set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text())) == set(REQUIRED)


@pytest.mark.parametrize("name", REQUIRED)
def test_a_missing_variable_stops_config_and_is_named(name: str, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    lines = ENV_EXAMPLE.read_text().splitlines(keepends=True)
    env_file.write_text("".join(line for line in lines if not line.startswith(f"{name}=")))
    result = compose(env_file)
    # Compose 1.29 quotes the whole `environment` it failed on, ${...} and all: the name must be in the message.
    message = re.sub(r"\$\{[^}]*\}", "", result.stderr)
    assert result.returncode != 0 and re.search(rf"\b{name}\b", message), result.stderr


def test_without_an_env_file_config_fails(tmp_path: Path) -> None:
    empty = tmp_path / ".env"
    empty.touch()
    result = compose(empty)
    assert result.returncode != 0 and any(name in result.stderr for name in REQUIRED), result.stderr


def test_the_example_documents_every_variable_and_holds_no_secret() -> None:
    text = ENV_EXAMPLE.read_text()
    for name in set(re.findall(r"\$\{(\w+)", COMPOSE.read_text())):
        assert re.search(rf"^(# )?{name}=", text, re.M), f"{name} is not in deploy/.env.example"
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert i and lines[i - 1].startswith("#"), f"no comment explains {line}"
    for name, value in example_values().items():
        if SECRET.search(name):
            assert value.startswith("change-me"), f"{name} must be a change-me placeholder"


def test_the_dev_override_points_sms_at_the_sandbox() -> None:
    services = resolve(ENV_EXAMPLE, "--profile", "dev", files=(COMPOSE, COMPOSE.with_name("docker-compose.dev.yml")))[
        "services"
    ]
    sms, gateway, sandbox = env(services["sms"]), env(services["gateway"]), env(services[SANDBOX])
    assert urlsplit(sms["TWILIO_BASE_URL"])[:2] == ("http", f"{SANDBOX}:{sandbox['SANDBOX_PORT']}")
    assert sms["APP_ENV"] == "development"  # production refuses a TWILIO_BASE_URL that is not Twilio's
    assert (sms["TWILIO_ACCOUNT_SID"], sms["TWILIO_AUTH_TOKEN"]) == (
        sandbox["TWILIO_ACCOUNT_SID"],
        sandbox["TWILIO_AUTH_TOKEN"],
    )
    # The sandbox signs its webhooks over the URL it calls; the gateway checks them over its PUBLIC_URL.
    assert sandbox["SANDBOX_INBOUND_URL"] == f"{gateway['PUBLIC_URL']}/webhooks/twilio/inbound"
    assert sms["PUBLIC_URL"] == gateway["PUBLIC_URL"]
    assert {n: env(s)["APP_ENV"] for n, s in services.items() if n not in ("sms", SANDBOX)} == dict.fromkeys(
        set(services) - {"sms", SANDBOX}, "production"
    )
