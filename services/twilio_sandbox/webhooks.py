"""The webhooks the sandbox posts, signed as Twilio signs them: status callbacks and inbound messages.

Each POST is a form (application/x-www-form-urlencoded) with header
X-Twilio-Signature = RequestValidator(auth_token).compute_signature(url, form),
the twilio library's own function, and a fresh I-Twilio-Idempotency-Token.
Like Twilio, a status callback that fails is not retried; the stored status
moves on regardless.

    accepted (queued) ──delay (or queued_for)──► status "sent", date_sent set, POST
                      ──delay──► status "delivered" (or undelivered), POST
"""

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar
from uuid import uuid4

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from services.twilio_sandbox.state import API_VERSION, DELIVERY_ERRORS, Message, new_sid
from shared import logging

log = logging.get("twilio_sandbox")
TIMEOUT = aiohttp.ClientTimeout(total=15)  # Twilio gives a webhook 15 s
T = TypeVar("T")


class Webhooks:
    """Posts webhooks, and owns the work the sandbox does after it answered (callbacks, slow answers)."""

    def __init__(self, auth_token: str, delay: float):
        self._validator = RequestValidator(auth_token)
        self._delay = delay
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(timeout=TIMEOUT)

    async def close(self) -> None:
        await self.cancel_pending()
        if self._session is not None:
            await self._session.close()

    async def cancel_pending(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def post(self, url: str, form: dict[str, str]) -> int:
        """POST a signed form to `url` and return the answer's status (raises aiohttp.ClientError, TimeoutError)."""
        assert self._session is not None, "open() first"
        headers = {
            "X-Twilio-Signature": self._validator.compute_signature(url, form),
            "I-Twilio-Idempotency-Token": str(uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        async with self._session.post(url, data=form, headers=headers) as answer:
            await answer.read()
            return answer.status

    def follow(self, message: Message, delivery: str, queued_for: float = 0.0) -> None:
        """Move an accepted message to sent (after `queued_for` seconds in the queue, if longer than the usual
        delay), then to `delivery`, posting a status callback for each step."""
        self.spawn(self._progress(message, delivery, queued_for))

    async def _progress(self, message: Message, delivery: str, queued_for: float) -> None:
        for status, pause in (("sent", max(self._delay, queued_for)), (delivery, self._delay)):
            await asyncio.sleep(pause)  # a real carrier takes seconds; callers must not rely on either
            message.move(status, DELIVERY_ERRORS.get(status))
            if message.status_callback:
                await self._callback(message)

    async def _callback(self, message: Message) -> None:
        form = {
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "MessageStatus": message.status,
            "SmsStatus": message.status,
            "AccountSid": message.account_sid,
            "From": message.from_ or "",
            "To": message.to,
            "ApiVersion": API_VERSION,
        }
        if message.messaging_service_sid:
            form["MessagingServiceSid"] = message.messaging_service_sid
        if message.error_code:
            form["ErrorCode"] = str(message.error_code)
        url = message.status_callback or ""
        try:
            status = await self.post(url, form)
            log.info("sandbox.status_callback", sid=message.sid, status=message.status, url=url, answer=status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "sandbox.status_callback_failed", sid=message.sid, status=message.status, url=url, error=repr(exc)
            )

    def spawn(self, work: Coroutine[Any, Any, T]) -> "asyncio.Task[T]":
        """Run `work` in the background, cancelled by `cancel_pending` (reset) and `close` (shutdown)."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


WEBHOOKS = web.AppKey("webhooks", Webhooks)


def inbound_form(account_sid: str, from_: str, to: str, body: str) -> dict[str, str]:
    """The form Twilio posts to a number's messaging webhook for an incoming SMS."""
    sid = new_sid("SM")
    return {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": API_VERSION,
    }
