"""The hub's fan-out: a slow screen is dropped, the others are not held back."""
import asyncio

from services.gateway.ws import TOO_SLOW, Client, Hub


class StuckSocket:
    """A socket whose reader never reads: nothing leaves its queue."""

    closed = False

    def __init__(self) -> None:
        self.close_codes: list[int] = []

    async def close(self, code: int, message: bytes = b"") -> None:
        self.close_codes.append(code)
        self.closed = True


async def test_a_slow_client_is_closed_and_the_others_get_every_event() -> None:
    hub = Hub("s" * 40, queue_size=3, hello_timeout=1, allowed_origins=set())
    slow = Client(StuckSocket(), "org", ["#"], asyncio.Queue(3))  # type: ignore[arg-type]
    fast = Client(StuckSocket(), "org", ["#"], asyncio.Queue(100))  # type: ignore[arg-type]
    stranger = Client(StuckSocket(), "other", ["#"], asyncio.Queue(100))  # type: ignore[arg-type]
    hub.clients = {"org": {slow, fast}, "other": {stranger}}
    for i in range(10):
        hub.dispatch("leads.created", {"org_id": "org", "id": str(i), "data": {}})
    await slow.closing  # type: ignore[misc]
    assert slow.slow and slow.ws.close_codes == [TOO_SLOW]  # type: ignore[attr-defined]
    assert fast.queue.qsize() == 10 and not fast.slow
    assert stranger.queue.qsize() == 0


async def test_events_without_an_organisation_go_nowhere() -> None:
    hub = Hub("s" * 40, queue_size=3, hello_timeout=1, allowed_origins=set())
    client = Client(StuckSocket(), "org", ["#"], asyncio.Queue(3))  # type: ignore[arg-type]
    hub.clients = {"org": {client}}
    hub.dispatch("leads.created", {"id": "1", "data": {}})
    assert client.queue.qsize() == 0


async def test_an_event_published_twice_reaches_a_screen_once() -> None:
    hub = Hub("s" * 40, queue_size=10, hello_timeout=1, allowed_origins=set())
    client = Client(StuckSocket(), "org", ["#"], asyncio.Queue(10))  # type: ignore[arg-type]
    hub.clients = {"org": {client}}
    for event_id in ("a", "b", "a"):
        hub.dispatch("leads.created", {"org_id": "org", "id": event_id, "data": {}})
    assert client.queue.qsize() == 2
