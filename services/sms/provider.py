"""The SMS provider: Twilio's official client, with errors sorted into what the service can act on.

Guarantees:
- every call ends within `TWILIO_TIMEOUT` seconds (the async client applies no
  timeout of its own), and is never retried here: a POST the client retried
  blindly could send the SMS twice. Retrying is the service's decision.
- every failure is one of three exceptions:
    PermanentFailure(code, message)  the provider refused this message for good (bad number, landline, ...)
    OptedOut (a PermanentFailure)    the recipient replied STOP (21610): never text them again
    TransientFailure(reason)         429, 5xx, timeout, connection error: try again later
  A timeout or a lost connection after a send may hide a message Twilio did
  accept: before sending again, ask `find_sent` (it finds the message still
  queued, and its body as Smart Encoding may have rewritten it).
- with `TWILIO_BASE_URL` set (the default: the local sandbox) no request goes
  anywhere else, whatever TWILIO_EDGE / TWILIO_REGION say.
"""

import asyncio
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Self, TypeVar
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.base.page import Page
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageInstance

from services.sms.segments import segments
from services.sms.smart_encoding import comparable
from shared.settings import (
    SANDBOX_TWILIO_AUTH_TOKEN,
    placeholder,
    published_twilio_token,
)

SANDBOX_ACCOUNT_SID = "ACsandbox00000000000000000000000000"
SANDBOX_AUTH_TOKEN = SANDBOX_TWILIO_AUTH_TOKEN
OPTED_OUT = 21610
# Twilio prefixes the bodies a trial account sends.
TRIAL_PREFIX = "Sent from your Twilio trial account - "
PAGE_SIZE = 50  # an attempt's window is seconds long: the first page almost always reaches before it
T = TypeVar("T")


class ProviderSettings(BaseSettings):
    """Defaults match the sandbox's: with no credentials set, the service talks to the sandbox."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    twilio_account_sid: str = Field(SANDBOX_ACCOUNT_SID, min_length=1)
    twilio_auth_token: SecretStr = Field(SecretStr(SANDBOX_AUTH_TOKEN), min_length=1)
    # The sender: a number (default: Twilio's valid test sender), unless a Messaging Service is set.
    twilio_from_number: str = "+15005550006"
    twilio_messaging_service_sid: str = Field("", pattern=r"^(MG[0-9a-fA-F]{32})?$")
    # Empty: the real Twilio (api.twilio.com, TWILIO_EDGE / TWILIO_REGION apply).
    twilio_base_url: str = Field("http://127.0.0.1:8089", pattern=r"^(https?://.+)?$")
    twilio_timeout: float = Field(10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _real_twilio_needs_credentials(self) -> Self:
        sandbox_credentials = (self.twilio_account_sid, self.twilio_auth_token.get_secret_value())
        if not self.twilio_base_url and (
            SANDBOX_ACCOUNT_SID in sandbox_credentials or SANDBOX_AUTH_TOKEN in sandbox_credentials
        ):
            raise ValueError(
                "TWILIO_BASE_URL is empty (the real Twilio): set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN too"
            )
        return self

    def twilio_problems(self) -> dict[str, str]:
        """In production (shared/settings.py, Production): the real Twilio, with real credentials."""
        problems = {}
        if published_twilio_token(self.twilio_auth_token.get_secret_value()):
            problems["TWILIO_AUTH_TOKEN"] = "unset, the sandbox's published token or a placeholder: set your account's"
        if self.twilio_account_sid == SANDBOX_ACCOUNT_SID or placeholder(self.twilio_account_sid):
            problems["TWILIO_ACCOUNT_SID"] = "unset, the sandbox's or a placeholder: set your Twilio account's"
        host = urlsplit(self.twilio_base_url).hostname or ""
        if self.twilio_base_url and not (
            self.twilio_base_url.startswith("https://") and (host == "twilio.com" or host.endswith(".twilio.com"))
        ):
            problems["TWILIO_BASE_URL"] = (
                f"{self.twilio_base_url} is not Twilio (the sandbox's, by default): leave it empty for api.twilio.com"
            )
        return problems


class ProviderError(Exception):
    pass


class PermanentFailure(ProviderError):
    def __init__(self, code: int | None, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class OptedOut(PermanentFailure):
    def __init__(self, message: str = "Attempt to send to unsubscribed recipient", code: int = OPTED_OUT):
        super().__init__(code, message)


class TransientFailure(ProviderError):
    """`maybe_accepted`: the request may have reached Twilio (a timeout, a connection lost mid-way),
    so it may still accept it; a 429 or a 5xx answer means it did not."""

    def __init__(self, reason: str, code: int | None = None, *, maybe_accepted: bool = False):
        super().__init__(reason)
        self.reason, self.code, self.maybe_accepted = reason, code, maybe_accepted


@dataclass(frozen=True)
class Sent:
    sid: str
    status: str
    segments: int


class HttpClient(AsyncTwilioHttpClient):
    """The official async HTTP client, sending the credentials as an Authorization header.

    Its `request()` wraps them in `aiohttp.BasicAuth`, deprecated since aiohttp
    3.14: a DeprecationWarning on every call (an error where warnings are).
    """

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if auth is not None:
            headers = {**(headers or {}), "Authorization": aiohttp.encode_basic_auth(*auth, encoding="latin1")}
        return await super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=None,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


class Provider:
    """One per process; `close()` it. Cheap to build outside the event loop: the client is made on first use."""

    def __init__(self, settings: ProviderSettings):
        self._settings = settings
        self._http: HttpClient | None = None
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        """The official client, configured; made inside the running loop (its aiohttp session needs one)."""
        if self._client is None:
            s = self._settings
            self._http = HttpClient()  # no max_retries: it would retry POSTs blindly
            self._client = Client(s.twilio_account_sid, s.twilio_auth_token.get_secret_value(), http_client=self._http)
            if s.twilio_base_url:
                self._client.api.base_url = s.twilio_base_url
                # The client rewrites every host when these are set (from TWILIO_EDGE / TWILIO_REGION by default),
                # which would send sandbox traffic to "127.<edge>.<region>.0.1".
                self._client.edge = self._client.region = None
        return self._client

    async def send(self, to: str, body: str, status_callback: str | None) -> Sent:
        s = self._settings
        sender = (
            {"messaging_service_sid": s.twilio_messaging_service_sid}
            if s.twilio_messaging_service_sid
            else {"from_": s.twilio_from_number}
        )
        if status_callback:
            sender["status_callback"] = status_callback
        message = await self._call(self.client.messages.create_async(to=to, body=body, **sender))
        # Through a Messaging Service, Twilio counts segments only once it picked a sender: count them here then.
        counted = int(message.num_segments or 0) or segments(body)[1]
        return Sent(sid=str(message.sid), status=str(message.status), segments=counted)

    async def find_sent(self, to: str, since: datetime, body: str, until: datetime | None = None) -> list[str]:
        """The sids of the messages Twilio accepted from our sender for `to` with `body`, created between
        `since` and `until` (aware), oldest first (the attempt a redelivery repeats comes first). Which of
        them another SMS already holds is the caller's question.

        Not filtered on DateSent: a message still in Twilio's queue has no date_sent, and a
        DateSent filter does not list it. The list is read by To and From (newest first, as
        Twilio lists it), page after page until a page reaches messages created before `since`,
        and `date_created` decides. The body is compared as Twilio may have rewritten it: Smart
        Encoding (`smart_encoding.comparable` on both sides) and a trial account's prefix.
        """
        if since.tzinfo is None or (until is not None and until.tzinfo is None):
            raise ValueError("since and until must be aware datetimes")
        since = since.replace(microsecond=0)  # Twilio's dates are whole seconds
        wanted = comparable(body)
        found = []
        for message in await self._listed_since(to, since):
            created = message.date_created
            in_window = created is None or (created >= since and (until is None or created <= until))
            text = message.body or ""
            if in_window and wanted in (comparable(text), comparable(text.removeprefix(TRIAL_PREFIX))):
                found.append(str(message.sid))
        return found[::-1]

    async def _listed_since(self, to: str, since: datetime) -> list[MessageInstance]:
        """The messages from our sender to `to`, newest first, down to the first page that reaches before `since`."""
        s = self._settings
        # Through a Messaging Service the sender is picked later (`from` is empty until then): To alone, then.
        sender = {} if s.twilio_messaging_service_sid else {"from_": s.twilio_from_number}
        page: Page | None = await self._call(self.client.messages.page_async(to=to, page_size=PAGE_SIZE, **sender))
        listed: list[MessageInstance] = []
        while page is not None:
            records = list(page)
            listed += records
            if not records or any(m.date_created is not None and m.date_created < since for m in records):
                break
            page = await self._call(page.next_page_async())
        if s.twilio_messaging_service_sid:
            listed = [m for m in listed if m.messaging_service_sid == s.twilio_messaging_service_sid]
        return listed

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._settings.twilio_timeout):
                return await call
        except TimeoutError:
            raise TransientFailure(
                f"no answer from Twilio within {self._settings.twilio_timeout}s", maybe_accepted=True
            ) from None
        except TwilioRestException as exc:
            raise classify(exc.status, exc.code, exc.msg) from exc
        except TwilioServiceException as exc:
            raise classify(exc.status, exc.code, exc.detail or exc.title) from exc
        except TwilioException as exc:  # a list page that failed: the client keeps only the response
            raise unreadable_page(exc) from exc
        except aiohttp.ClientConnectorError as exc:  # never connected: nothing was sent
            raise TransientFailure(f"cannot reach Twilio: {exc!r}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransientFailure(f"lost Twilio mid-call: {exc!r}", maybe_accepted=True) from exc
        except ValueError as exc:  # a 2xx answer that is not the JSON it should be
            raise TransientFailure(f"unreadable answer from Twilio: {exc!r}") from exc


def classify(status: int, code: int | None, message: str) -> ProviderError:
    """Twilio's answer, sorted: what to try again, what to give up on, who opted out."""
    if status == 429 or status >= 500:
        return TransientFailure(f"Twilio answered {status} (code {code}): {message}", code)
    if status == 401:  # wrong credentials refuse every message alike: a configuration to fix, not a message to drop
        return TransientFailure(f"Twilio refused the credentials (code {code}): {message}", code)
    if code == OPTED_OUT:
        return OptedOut(message)
    return PermanentFailure(code or status, message)


def unreadable_page(exc: TwilioException) -> ProviderError:
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", 500)
    try:
        body = json.loads(getattr(response, "text", "") or "{}")
        code, message = body.get("code"), body.get("message", str(exc))
    except (ValueError, AttributeError):
        code, message = None, str(exc)
    return classify(status, code, message)
