"""Settings: one pydantic-settings class per process, read from the environment.

A bad or missing setting stops the process at start with one line naming the
environment variable (see `load`), never a traceback deep inside a handler.
"""

import sys
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared import database_url
from shared.event_log import Retention
from shared.identity import BrokerIdentity, own_user

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/crm"
# The development secret `make run` makes once per checkout (never committed): refused in production.
DEV_SECRET_FILE = Path(__file__).resolve().parents[1] / ".dev-secret"
AppEnv = Literal["development", "production"]
# The Twilio sandbox's published credential (services/twilio_sandbox): anyone who reads this repository can sign
# a webhook with it. Refused in production wherever a Twilio token is set.
SANDBOX_TWILIO_AUTH_TOKEN = "sandbox-auth-token"
PLACEHOLDER = "change-me"  # how deploy/.env.example marks a value to replace


def placeholder(value: str) -> bool:
    return PLACEHOLDER in value.lower()


def published_twilio_token(value: str) -> bool:
    """The sandbox's token, or the example's placeholder: a Twilio token anyone could sign webhooks with."""
    return value == SANDBOX_TWILIO_AUTH_TOKEN or placeholder(value)


class Production:
    """What a process must not start with in production (APP_ENV=production, the default): each class of
    settings adds its own to `production_problems` (variable -> why), and `load` refuses to start with any."""

    app_env: AppEnv

    def production_problems(self) -> dict[str, str]:
        return {}


def dev_secret() -> str | None:
    try:
        return DEV_SECRET_FILE.read_text().strip() or None
    except OSError:
        return None


class CommonSettings(Production, BaseSettings):
    # hide_input_in_errors: a refused URL's password is not in the ValidationError's text either.
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, hide_input_in_errors=True)

    # `production` (the default) refuses development shortcuts (`production_problems`); `make run`, the tests,
    # `make bench` and `make chaos` set `development`.
    app_env: AppEnv = "production"
    # URLs may hold passwords: kept out of any repr (and so of any log line of the settings).
    amqp_url: str = Field(DEFAULT_AMQP_URL, pattern=r"^amqps?://", repr=False)
    # One server, or a primary and its standbys tried in order (shared/database_url.py, `_database_url`).
    database_url: str = Field(DEFAULT_DATABASE_URL, repr=False)
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # None: JSON when stderr is not a terminal, console lines when it is.
    log_json: bool | None = None
    # The event log (shared/event_log.py): set when it is created; the same for every process.
    event_log_max_age: str = Field("7D", pattern=r"^[0-9]+[YMDhms]$")
    event_log_max_bytes: int = Field(1024**3, ge=1)
    event_log_segment_bytes: int = Field(8 * 1024**2, ge=1)
    # Traces (shared/tracing.py): exported by OTLP over HTTP to this endpoint (e.g. http://127.0.0.1:4318),
    # and/or written as JSON lines to TRACE_FILE; off when neither is set.
    otel_exporter_otlp_endpoint: str = ""
    trace_file: str = ""
    # Broker-side identity (shared/identity.py): RabbitMQ users of integrating systems and the one
    # organisation each acts for ("acme-sync:acme,globex-erp:globex"); users besides AMQP_URL's that
    # may act for any organisation (comma-separated).
    broker_orgs: str = Field("", pattern=r"^([^:,\s]+:[^:,\s]+(,[^:,\s]+:[^:,\s]+)*)?$")
    broker_trusted_users: str = ""

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        """Read as asyncpg will read it. Every process writes: a URL that may settle on a standby is refused,
        and one with several hosts must say to skip the standbys (docs/postgres-failover.md)."""
        url = database_url.parse(value)
        if url.target_session_attrs in database_url.STANDBY_ATTRS:
            raise ValueError(
                f"target_session_attrs={url.target_session_attrs} lets a connection settle on a standby, and "
                f"every process writes: use target_session_attrs=read-write"
            )
        if url.several and url.target_session_attrs not in database_url.PRIMARY_ATTRS:
            raise ValueError(
                f"it names {len(url.hosts)} hosts without target_session_attrs=read-write: a connection could "
                f"stay on a standby and fail every write; add ?target_session_attrs=read-write"
            )
        return value

    def production_problems(self) -> dict[str, str]:
        problems = super().production_problems()
        if own_user(self.amqp_url) == "guest":
            problems["AMQP_URL"] = (
                "its user is guest, RabbitMQ's default with a published password: give the "
                "platform a broker user of its own"
            )
        for name, url in (("AMQP_URL", self.amqp_url), ("DATABASE_URL", self.database_url)):
            if placeholder(url):
                problems.setdefault(name, f"it holds a {PLACEHOLDER} placeholder (deploy/.env.example): set a password")
        return problems

    @property
    def identity(self) -> "BrokerIdentity":
        return BrokerIdentity.of(self.amqp_url, self.broker_trusted_users, self.broker_orgs)

    @property
    def retention(self) -> "Retention":
        return Retention(self.event_log_max_age, self.event_log_max_bytes, self.event_log_segment_bytes)


class ServiceSettings(CommonSettings):
    """Settings every FastStream service shares."""

    prefetch: int = Field(32, ge=1, le=1000)
    db_pool_size: int = Field(10, ge=1, le=100)
    # Delay tiers in seconds; a transient failure waits tier[n] before attempt n+2.
    # After the last tier the message is parked.
    retry_delays: Annotated[list[float], NoDecode] = [1, 5, 30, 120, 600]
    lock_timeout_ms: int = Field(2000, ge=1)
    statement_timeout_ms: int = Field(10000, ge=1)
    # Inbox rows (and so idempotency keys) are kept at least this long.
    idempotency_ttl_hours: float = Field(24, ge=24)
    relay_batch: int = Field(200, ge=1, le=5000)
    # Commands delivered together share one transaction (shared/group_commit.py), at most this many; 1: off.
    group_commit_max: int = Field(64, ge=1, le=1000)
    # Test hook: kill the process with SIGKILL after the commit of a command of
    # this routing key and before its ack. Empty in every real deployment.
    fault_crash_after_commit: str = ""
    # Test hook: SIGKILL once a batch of several commands committed, before any of them is acked.
    fault_crash_after_group_commit: bool = False
    # /metrics (Prometheus) on 127.0.0.1:METRICS_PORT; 0: not served.
    metrics_port: int = Field(0, ge=0, le=65535)
    # At start, how long to wait for an unreachable database or broker before exiting (to the supervisor).
    startup_wait_seconds: float = Field(60, ge=0)
    # A message held longer than this, or a background loop's cycle running longer, makes the service answer
    # not ready (shared/stalls.py, shared/loops.py). Unset: six statement timeouts (60 s by default).
    message_deadline_seconds: float | None = Field(None, gt=0)

    @property
    def message_deadline(self) -> float:
        return self.message_deadline_seconds or 6 * self.statement_timeout_ms / 1000

    @field_validator("retry_delays", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [float(part) for part in value.split(",") if part.strip()]
        return value


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S]) -> S:
    """Build the settings or exit naming each bad variable; in production, also each development shortcut."""
    try:
        settings = cls()
    except ValidationError as exc:
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"][:1]).upper()
            print(f"invalid setting {name}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
    if isinstance(settings, Production) and settings.app_env == "production":
        problems = settings.production_problems()
        for name, why in problems.items():
            print(f"invalid setting {name} (APP_ENV=production): {why}", file=sys.stderr)
        if problems:
            raise SystemExit(2)
    return settings


def secret(value: SecretStr | str) -> str:
    """The value of a secret setting, where it is used (and only there)."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value
