from pydantic import Field, SecretStr, field_validator

from services.gateway import cors
from services.gateway.auth import TokenRules
from shared.blobs import BlobSettings
from shared.settings import (
    PLACEHOLDER,
    SANDBOX_TWILIO_AUTH_TOKEN,
    CommonSettings,
    dev_secret,
    placeholder,
    published_twilio_token,
)


class GatewaySettings(CommonSettings, BlobSettings):
    host: str = Field("127.0.0.1", validation_alias="GATEWAY_HOST")
    port: int = Field(8080, ge=0, le=65535, validation_alias="GATEWAY_PORT")
    # HS256 secret shared with whoever issues tokens. Required: no default on purpose.
    jwt_secret: SecretStr
    # Checked when set: a token must name this issuer (`iss`) and this audience (`aud`).
    jwt_issuer: str | None = Field(None, min_length=1)
    jwt_audience: str | None = Field(None, min_length=1)
    # Clock skew allowed on `exp`, `iat`, `nbf`; the longest a token may live (`exp` - `iat`).
    jwt_leeway_seconds: float = Field(30, ge=0, le=600)
    jwt_max_lifetime_hours: float = Field(24, gt=0)
    # How long a button request waits for the service's answer before it gets 202.
    reply_timeout: float = Field(5.0, gt=0, le=60)
    # How long publishing (connect + confirm) may take before the answer is 503.
    publish_timeout: float = Field(3.0, gt=0, le=60)
    query_timeout: float = Field(5.0, gt=0, le=60)
    # Messages a websocket client may have waiting before it is dropped as too slow.
    ws_queue_size: int = Field(1000, ge=1)
    ws_hello_timeout: float = Field(10.0, gt=0)
    # Pings (protocol and {"type": "ping"}) every interval; no pong within half of it closes the socket.
    ws_ping_interval: float = Field(15.0, gt=0)
    # Comma-separated Origins allowed to open a websocket; empty allows any.
    ws_allowed_origins: str = ""
    # Comma-separated origins (https://app.example.com, http://localhost:3000) whose pages may call /api/* and
    # import /sdk/* from a browser (services/gateway/cors.py); empty: same origin only, no CORS header at all.
    cors_allowed_origins: str = ""
    # Replays at once (each a channel reading the whole log from a resume's position), on this gateway
    # and per (organisation, user); a resume beyond either is closed 1013 and comes back after a backoff.
    ws_max_replays: int = Field(64, ge=1)
    ws_max_replays_per_user: int = Field(4, ge=1)

    # The URL the provider calls us at: webhook signatures are computed over it.
    public_url: str = Field("http://127.0.0.1:8080", pattern=r"^https?://")
    # Checks the provider's webhook signatures (the sandbox's token unless set; refused in production).
    twilio_auth_token: SecretStr = Field(SecretStr(SANDBOX_TWILIO_AUTH_TOKEN), min_length=1)

    # The largest file an upload may hold (POST /api/leads/{leadId}/documents); larger: 413. Uploads go
    # to the blob store (BLOB_STORE, BLOB_DIR...: shared/blobs.py), shared with the documents service.
    document_max_bytes: int = Field(10 * 1024**2, ge=1)

    # Development only: the console offers "sign in as demo agent" (POST /dev/token), a token for
    # DEV_LOGIN_USER of DEV_LOGIN_ORG to anyone on this machine (loopback) who asks. `make run` turns it on;
    # with APP_ENV=production the gateway refuses to start with it.
    dev_login: bool = False
    dev_login_org: str = Field("demo", min_length=1)
    dev_login_user: str = Field("agent", min_length=1)

    @field_validator("jwt_secret")
    @classmethod
    def _not_placeholder(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if text.strip() != text or not text.strip():
            raise ValueError("must not be blank or padded with spaces")
        if len(text) < 32:
            raise ValueError("must be at least 32 characters (e.g. openssl rand -hex 32)")
        return value

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        cors.origins(value)  # a ValueError naming the first entry that is not an origin
        return value

    def production_problems(self) -> dict[str, str]:
        problems = super().production_problems()
        if placeholder(self.jwt_secret.get_secret_value()):
            problems["JWT_SECRET"] = f"a {PLACEHOLDER} placeholder (deploy/.env.example): openssl rand -hex 32"
        elif self.jwt_secret.get_secret_value() == dev_secret():
            problems["JWT_SECRET"] = "it is the development secret (.dev-secret): make one, e.g. openssl rand -hex 32"
        if published_twilio_token(self.twilio_auth_token.get_secret_value()):
            problems["TWILIO_AUTH_TOKEN"] = (
                "unset, the sandbox's published token or a placeholder: anyone could sign "
                "a webhook (a STOP for any number); set your Twilio account's auth token"
            )
        if self.dev_login:
            problems["DEV_LOGIN"] = "gives a token to anyone who asks: development only"
        return problems

    @property
    def token_rules(self) -> TokenRules:
        return TokenRules(
            self.jwt_secret.get_secret_value(),
            self.jwt_issuer,
            self.jwt_audience,
            self.jwt_leeway_seconds,
            self.jwt_max_lifetime_hours * 3600,
            require_iat=self.app_env == "production",
        )

    @property
    def allowed_origins(self) -> set[str]:
        return {o.strip() for o in self.ws_allowed_origins.split(",") if o.strip()}

    @property
    def cors_origins(self) -> frozenset[str]:
        return cors.origins(self.cors_allowed_origins)
