"""The one HTTP core every button shares: a session, retries with one key, 202 followed.

Guarantee: a call is sent with ONE Idempotency-Key, made by the caller once and
reused on every retry, so however many times it reaches the gateway it has one
effect (the gateway turns the key into the command's message id).

    send ──► 2xx ───────────────────────────────────────────► answer
         ├─► 202 + Location ──► poll the status resource ───► its final answer
         ├─► network error, 429, 500, 502, 503, 504 ────────► wait (Retry-After, else full jitter),
         │                                                    send again, same key
         ├─► a 5xx problem whose type is final (a parked ───► ServerError (never retried)
         │   command: 503 /problems/command-parked)
         └─► 400/401/403/404/409/422 ───────────────────────► Refused (never retried)

The retry table is the JavaScript SDK's (RETRY_STATUSES). Retries stop after `attempts` or before
`total_time` would be passed; then Unreachable (with the last status), or the server's own class
when it said to try again (`Unavailable`).
A problem answer is raised as the class of its type (crm_client/problems.py, generated from the
server's table: `ForbiddenMove`, `Unavailable`...), else as the class of its status.
"""

import json
from collections.abc import Awaitable, Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)
from tenacity.wait import wait_base, wait_random_exponential

from crm_client import problems
from crm_client.errors import Rejected, ServerError, StillAccepted, Unreachable, refusal

T = TypeVar("T")
RETRY_STATUSES = {429, 500, 502, 503, 504}  # and network errors: the JavaScript SDK's table


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # sends of one call, the first included
    total_time: float = 30.0  # seconds a call may spend retrying
    backoff: float = 0.25  # the first step of the exponential backoff (full jitter: 0..step)
    backoff_max: float = 8.0
    request_timeout: float = 30.0  # one request; the gateway itself answers 202 after REPLY_TIMEOUT
    follow_time: float = 120.0  # how long a 202 is followed before StillAccepted
    poll_max: float = 2.0  # the longest pause between two looks at the status resource


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def replayed(self) -> bool:
        return self.headers.get("Idempotent-Replayed") == "true"


class Retryable(Exception):
    """One attempt that may be repeated with the same key."""

    def __init__(self, detail: str, status: int | None = None, body: Any = None, retry_after: float | None = None):
        super().__init__(detail)
        self.status, self.body, self.retry_after = status, body, retry_after


class _NotYet(Exception):
    """The status resource still says 202 (or could not be asked this time)."""


def retry_after(value: str | None) -> float | None:
    """Retry-After is seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


class HonourRetryAfter(wait_base):
    """Full jitter (AWS's "exponential backoff and jitter"), but never sooner than the server asked."""

    def __init__(self, backoff: float, backoff_max: float):
        self.jitter = wait_random_exponential(multiplier=backoff, max=backoff_max)

    def __call__(self, retry_state: Any) -> float:
        wait = self.jitter(retry_state)
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        asked = getattr(exc, "retry_after", None)
        return max(wait, asked) if asked is not None else wait


def known(status: int | None, body: Any) -> type[Rejected] | None:
    """The class of a problem body's type, when it is one of the server's refusals answered with its own
    status (a proxy's 502 page that says "not-found" is a 502, and retried as one)."""
    kind = problems.BY_TYPE.get(str(body.get("type"))) if isinstance(body, dict) else None
    return kind if kind is not None and kind.status == status else None


def classify(status: int, headers: Mapping[str, str], body: Any) -> None:
    """Raise Retryable for an answer that a repeat with the same key may change: a status of the table,
    unless its problem type is one of the server's that no waiting changes (a parked command, a 503)."""
    kind = known(status, body)
    final = kind is not None and not issubclass(kind, Unreachable)  # `Unavailable` (try again) is not final
    if status in RETRY_STATUSES and not final:
        raise Retryable(f"HTTP {status}", status, body, retry_after(headers.get("Retry-After")))


def rejected(status: int, body: dict[str, Any]) -> Rejected:
    """The error of a problem answer: the class of its type, else the one of its status."""
    kind = known(status, body)
    if kind is not None:
        return kind(status, body)
    return refusal(status, body) if status < 500 else ServerError(status, body)


def final(answer: Answer) -> Answer:
    if answer.status < 400:
        return answer
    raise rejected(answer.status, answer.body if isinstance(answer.body, dict) else {"detail": str(answer.body)})


def unreachable(exc: Retryable) -> Unreachable:
    """After the last retry: the server's own class when it said to try again (`Unavailable`), else Unreachable."""
    kind = known(exc.status, exc.body)
    if kind is not None and issubclass(kind, Unreachable):
        return kind(exc.status, exc.body)  # a Rejected too: (status, body)
    return Unreachable(str(exc), exc.status, exc.body)


class Http:
    def __init__(self, url: str, token: str, policy: RetryPolicy):
        self.url, self.token, self.policy = url.rstrip("/"), token, policy
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.policy.request_timeout))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def send_once(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        key: str | None = None,
        file: "FilePart | None" = None,
        raw: bool = False,
    ) -> Answer:
        """One attempt; Retryable when it may be repeated. `file`: a multipart body made anew for this
        attempt (a file is reopened: streamed from disk); `raw`: a 2xx body as bytes, not JSON."""
        assert self.session is not None, "use the client inside `async with`"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "*/*" if raw else "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        try:
            with ExitStack() as opened:
                sent = file.multipart(opened) if file is not None else data
                async with self.session.request(method, self.url + path, data=sent, headers=headers) as response:
                    status, got = response.status, dict(response.headers)
                    if raw and status < 300:
                        return Answer(status, await response.read(), got)
                    text = await response.text()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise Retryable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = {"detail": text[:500]}
        classify(status, got, body)
        return Answer(status, body, got)

    async def retrying(self, attempt: Callable[..., Awaitable[T]], *args: Any, attempts: int | None = None) -> T:
        policy = self.policy
        retryer = AsyncRetrying(
            stop=stop_after_attempt(attempts or policy.attempts) | stop_before_delay(policy.total_time),
            wait=HonourRetryAfter(policy.backoff, policy.backoff_max),
            retry=retry_if_exception_type(Retryable),
            reraise=True,
        )
        try:
            return await retryer(attempt, *args)  # a coroutine function: tenacity awaits each try
        except Retryable as exc:
            raise unreachable(exc) from exc

    async def command(
        self, path: str, data: bytes | None, key: str, attempts: int | None = None, file: "FilePart | None" = None
    ) -> Answer:
        """POST a button press (a JSON body, or a file) with its key; the final answer (202 followed), or an error."""
        answer = await self.retrying(self.send_once, "POST", path, data, key, file, attempts=attempts)
        if answer.status == 202 and "Location" in answer.headers:
            answer = await self.follow(answer)
        return final(answer)

    async def query(self, path: str, raw: bool = False) -> Answer:
        return final(await self.retrying(self.send_once, "GET", path, None, None, None, raw))

    async def follow(self, accepted: Answer) -> Answer:
        """Poll the status resource until it gives the final answer (it says 202 while the service is down)."""
        location = accepted.headers["Location"]
        last: list[BaseException] = []

        async def look() -> Answer:
            try:
                answer = await self.send_once("GET", location)
            except Retryable as exc:
                last[:] = [exc]
                raise _NotYet() from exc
            if answer.status == 202:
                last.clear()
                raise _NotYet()
            return answer

        retryer = AsyncRetrying(
            stop=stop_before_delay(self.policy.follow_time),
            wait=wait_random_exponential(multiplier=self.policy.backoff, max=self.policy.poll_max),
            retry=retry_if_exception_type(_NotYet),
            reraise=True,
        )
        try:
            return await retryer(look)
        except _NotYet:
            if last:  # the gateway went away while we waited: repeating the call with its key is safe
                raise Unreachable(f"lost the gateway while following {location}: {last[0]}") from last[0]
            command = (accepted.body or {}).get("command", {}).get("id", location.rsplit("/", 1)[-1])
            raise StillAccepted(command, location) from None


@dataclass(frozen=True)
class FilePart:
    """A file sent as the part `name` of a multipart/form-data body."""

    name: str
    file: bytes | Path
    filename: str
    content_type: str | None = None  # None: application/octet-stream, and the gateway tells the type from the bytes

    def multipart(self, opened: ExitStack) -> aiohttp.MultipartWriter:
        value = self.file if isinstance(self.file, bytes) else opened.enter_context(Path(self.file).open("rb"))  # noqa: SIM115  (closed by the ExitStack)
        writer = aiohttp.MultipartWriter("form-data")
        part = writer.append(value, {"Content-Type": self.content_type or "application/octet-stream"})
        part.set_content_disposition("form-data", name=self.name, filename=self.filename)
        return writer
