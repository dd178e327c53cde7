"""Wiring of the Twilio sandbox: `init_app()` builds the aiohttp application.

Every call to Twilio's API goes through the front door first, in Twilio's order:
count it, misbehave if a test asked for it (error or delay), check HTTP Basic
credentials (AccountSid:AuthToken, and the account in the path), then answer.
"""

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import BasicAuth, hdrs, web
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.twilio_sandbox import api, control
from services.twilio_sandbox.state import (
    API_VERSION,
    SANDBOX,
    STATUS_CODES,
    Sandbox,
    twilio_error,
)
from services.twilio_sandbox.webhooks import WEBHOOKS, Webhooks
from shared import logging
from shared.settings import SANDBOX_TWILIO_AUTH_TOKEN, AppEnv, Production

log = logging.get("twilio_sandbox")
DEFAULT_ACCOUNT_SID = "ACsandbox00000000000000000000000000"
DEFAULT_AUTH_TOKEN = SANDBOX_TWILIO_AUTH_TOKEN
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SandboxSettings(Production, BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    app_env: AppEnv = "production"

    host: str = Field("127.0.0.1", validation_alias="SANDBOX_HOST")
    port: int = Field(8089, ge=0, le=65535, validation_alias="SANDBOX_PORT")
    account_sid: str = Field(DEFAULT_ACCOUNT_SID, min_length=1, validation_alias="TWILIO_ACCOUNT_SID")
    auth_token: SecretStr = Field(SecretStr(DEFAULT_AUTH_TOKEN), min_length=1, validation_alias="TWILIO_AUTH_TOKEN")
    # Where inbound messages (POST /_sandbox/inbound) are posted, like a number's messaging webhook: there only.
    inbound_url: str | None = Field(None, pattern=r"^https?://", validation_alias="SANDBOX_INBOUND_URL")
    # Seconds between accepted -> sent -> delivered (each step posts a status callback).
    callback_delay: float = Field(0.2, ge=0, le=60, validation_alias="SANDBOX_CALLBACK_DELAY")
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_json: bool | None = None

    def production_problems(self) -> dict[str, str]:
        return {
            "APP_ENV": "the Twilio sandbox is a development tool (a fake of Twilio with published credentials "
            "and a control API): it does not run in production"
        }


def unauthorized() -> web.Response:
    body = twilio_error(401, 20003, "Authenticate")
    return web.json_response(body, status=401, headers={hdrs.WWW_AUTHENTICATE: 'Basic realm="Twilio API"'})


def authorized(request: web.Request, sandbox: Sandbox) -> bool:
    try:
        credentials = BasicAuth.decode(request.headers.get(hdrs.AUTHORIZATION, ""))
    except ValueError:
        return False
    return (credentials.login, credentials.password) == (sandbox.account_sid, sandbox.auth_token)


@web.middleware
async def front_door(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(f"/{API_VERSION}/"):
        return await handler(request)
    sandbox = request.app[SANDBOX]
    if request.method == "POST":
        sandbox.calls += 1
    misbehaviour = sandbox.take_misbehaviour()
    if misbehaviour and misbehaviour.mode == "error":
        code, message = STATUS_CODES[misbehaviour.status]
        log.info("sandbox.misbehaved", mode="error", status=misbehaviour.status, path=request.path)
        return web.json_response(twilio_error(misbehaviour.status, code, message), status=misbehaviour.status)
    if misbehaviour and misbehaviour.mode == "slow":
        log.info("sandbox.misbehaved", mode="slow", delay=misbehaviour.delay, path=request.path)
        # As at Twilio, a request that arrived whole takes effect even if the client stops waiting for the answer.
        await request.read()
        return await asyncio.shield(request.app[WEBHOOKS].spawn(answer_later(request, handler, misbehaviour.delay)))
    return await answer(request, handler)


async def answer_later(request: web.Request, handler: Handler, delay: float) -> web.StreamResponse:
    await asyncio.sleep(delay)
    return await answer(request, handler)


async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    sandbox = request.app[SANDBOX]
    if not authorized(request, sandbox):
        return unauthorized()
    if request.match_info.get("account_sid") != sandbox.account_sid:
        return web.json_response(
            twilio_error(404, 20404, f"The requested resource {request.path} was not found"), status=404
        )
    return await handler(request)


async def webhooks(app: web.Application) -> AsyncIterator[None]:
    await app[WEBHOOKS].open()
    yield
    await app[WEBHOOKS].close()


@web.middleware
async def control_on_loopback(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The control API (/_sandbox/*) answers only on 127.0.0.1 (or ::1): on whatever address the sandbox
    listens (SANDBOX_HOST may be 0.0.0.0 in a container), a request that arrived at any other is a 404."""
    if request.path.startswith("/_sandbox/") and not _loopback(request.transport):
        raise web.HTTPNotFound(
            text='{"error": "the control API answers on 127.0.0.1 only"}', content_type="application/json"
        )
    return await handler(request)


def _loopback(transport: object) -> bool:
    sockname = getattr(transport, "get_extra_info", lambda _: None)("sockname")
    try:
        return ipaddress.ip_address(sockname[0]).is_loopback if isinstance(sockname, tuple) else False
    except ValueError:
        return False


def init_app(settings: SandboxSettings) -> web.Application:
    app = web.Application(middlewares=[control_on_loopback, front_door])
    token = settings.auth_token.get_secret_value()
    app[SANDBOX] = Sandbox(settings.account_sid, token, settings.inbound_url)
    app[WEBHOOKS] = Webhooks(token, settings.callback_delay)
    app.cleanup_ctx.append(webhooks)
    api.setup(app)
    control.setup(app)
    return app
