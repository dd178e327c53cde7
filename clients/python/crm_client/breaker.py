"""The client-side circuit breaker of SMS sends.

What counts as "the provider is down": the gateway answers a send with 200
{"sms": {"status": "queued"}} when Twilio failed transiently or the server's own breaker
is open (services/sms/sending.py), and 503 when the broker did not take the command.
After `threshold` such answers in a row the breaker opens: sends fail fast with
CircuitOpen, nothing reaches the gateway, for `cooldown` seconds; then ONE send goes
through as a trial (the others still fail fast while it runs): an SMS that is sent
closes the breaker, another provider-down answer opens it again. A refusal (404, 409,
422) is the provider or the domain answering: it is no failure.

Why purgatory: it is asyncio-native, typed, maintained (3.x, 2024) and has no
dependencies; aiobreaker has had no release since 2021 and pybreaker's async path needs
tornado. Purgatory's half-open state lets every caller through, so the single trial is
enforced here with a lock.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from crm_client.errors import CircuitOpen, ClientError, Unreachable

CIRCUIT = "sms.send"


class ProviderDown(Exception):
    """A send the server could not pass to the provider now (it answered `queued`)."""

    def __init__(self, body: Any):
        super().__init__("the SMS provider is down: the send was queued by the server")
        self.body = body


class SmsBreaker:
    def __init__(self, threshold: int = 3, cooldown: float = 30.0):
        # Only ProviderDown is a failure; any other error of ours (a refusal, the network) is not the
        # provider's doing. (Purgatory counts an excluded error as a success.)
        self.factory = AsyncCircuitBreakerFactory(
            default_threshold=threshold, default_ttl=cooldown, exclude=[ClientError]
        )
        self.trial = asyncio.Lock()

    async def state(self) -> str:
        return (await self.factory.get_breaker(CIRCUIT)).context.state

    async def call(self, send: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """Run `send` through the breaker; its answer, a queued one included, is returned as it came."""
        breaker = await self.factory.get_breaker(CIRCUIT)
        if breaker.context.state == "closed":
            return await self._through(breaker, send)
        if self.trial.locked():
            raise CircuitOpen("the SMS circuit is open and a trial send is under way")
        async with self.trial:
            return await self._through(breaker, send)

    @staticmethod
    async def _through(breaker: Any, send: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        try:
            async with breaker:
                try:
                    body = await send()
                except Unreachable as exc:
                    if exc.status == 503:  # the broker did not take it: the send cannot happen now
                        raise ProviderDown(exc) from exc
                    raise
                if (body.get("sms") or {}).get("status") == "queued":
                    raise ProviderDown(body)
                return body
        except OpenedState as exc:
            raise CircuitOpen(str(exc)) from None
        except ProviderDown as down:
            if isinstance(down.body, Unreachable):
                raise down.body from None
            return down.body  # queued by the server, which sends it later: the caller gets that answer
