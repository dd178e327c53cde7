from pydantic import Field, field_validator

from shared.blobs import BlobSettings
from shared.settings import CommonSettings


class GatewaySettings(CommonSettings, BlobSettings):
    host: str = Field("127.0.0.1", validation_alias="GATEWAY_HOST")
    port: int = Field(8080, ge=0, le=65535, validation_alias="GATEWAY_PORT")
    # HS256 secret shared with whoever issues tokens. Required: no default on purpose.
    jwt_secret: str = Field(min_length=32)
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
    # Replays at once (each a channel reading the whole log from a resume's position), on this gateway
    # and per (organisation, user); a resume beyond either is closed 1013 and comes back after a backoff.
    ws_max_replays: int = Field(64, ge=1)
    ws_max_replays_per_user: int = Field(4, ge=1)

    # The URL the provider calls us at: webhook signatures are computed over it.
    public_url: str = Field("http://127.0.0.1:8080", pattern=r"^https?://")
    # Checks the provider's webhook signatures (the sandbox's token unless set).
    twilio_auth_token: str = Field("sandbox-auth-token", min_length=1, repr=False)

    # The largest file an upload may hold (POST /api/leads/{leadId}/documents); larger: 413. Uploads go
    # to the blob store (BLOB_STORE, BLOB_DIR...: shared/blobs.py), shared with the documents service.
    document_max_bytes: int = Field(10 * 1024**2, ge=1)

    # Development only: the console offers "sign in as demo agent" (POST /dev/token), a token for
    # DEV_LOGIN_USER of DEV_LOGIN_ORG to anyone who asks. `make run` turns it on; never in production.
    dev_login: bool = False
    dev_login_org: str = Field("demo", min_length=1)
    dev_login_user: str = Field("agent", min_length=1)

    @field_validator("jwt_secret")
    @classmethod
    def _not_placeholder(cls, value: str) -> str:
        if value.strip() != value or not value.strip():
            raise ValueError("must not be blank or padded with spaces")
        return value

    @property
    def allowed_origins(self) -> set[str]:
        return {o.strip() for o in self.ws_allowed_origins.split(",") if o.strip()}
