"""A test's handle on the local Twilio sandbox: what it received, how it should misbehave."""

from dataclasses import dataclass

import aiohttp


@dataclass
class Sandbox:
    http: aiohttp.ClientSession
    url: str

    async def _post(self, path: str, body: dict) -> dict:
        async with self.http.post(self.url + path, json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def behave(self, **behaviour: object) -> None:
        """e.g. behave(mode="error", status=500, count=2); behave(mode="ok"). How accepted messages go on
        lasts until the next call: behave(queued_for=30) keeps them queued 30 s with date_sent null;
        behave(smart_encoding=True) stores their bodies as Twilio's Smart Encoding rewrites them
        (services/twilio_sandbox/control.py)."""
        await self._post("/_sandbox/behaviour", behaviour)

    async def reset(self) -> None:
        await self._post("/_sandbox/reset", {})

    async def received(self) -> dict:
        async with self.http.get(self.url + "/_sandbox/messages") as response:
            return await response.json()

    async def messages_to(self, phone: str) -> list[dict]:
        return [m for m in (await self.received())["messages"] if m["to"] == phone]

    async def calls(self) -> int:
        return (await self.received())["calls"]

    async def inbound(self, from_: str, body: str, to: str = "+15005550006") -> int:
        return (await self._post("/_sandbox/inbound", {"from": from_, "to": to, "body": body}))["status"]
