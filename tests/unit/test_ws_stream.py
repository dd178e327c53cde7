"""What the gateway's log reader (services/gateway/stream.py) counts as a lost connection, and what it leaves
to surface as a bug. (A connection cut under a replay, on the real broker: tests/integration/test_stream_reader.py.)"""

from types import SimpleNamespace

import aiormq
import pytest

from services.gateway.stream import CONNECTION_ERRORS, open_channel


@pytest.mark.parametrize(
    "error",
    [
        aiormq.exceptions.AMQPConnectionError("Server connection unexpectedly closed"),
        aiormq.exceptions.ConnectionClosed(320, "CONNECTION_FORCED"),
        aiormq.exceptions.ChannelClosed(None, None),
        aiormq.exceptions.ChannelInvalidStateError("<Channel: 1> closed"),
        ConnectionResetError("Connection lost"),
        TimeoutError(),
    ],
)
def test_what_a_lost_connection_raises_is_a_connection_error(error: Exception) -> None:
    assert isinstance(error, CONNECTION_ERRORS)


@pytest.mark.parametrize(
    "error", [RuntimeError("a bug"), KeyError("x-stream-offset"), AttributeError("x"), TypeError("x"), ValueError("x")]
)
def test_a_bug_is_not_a_connection_error(error: Exception) -> None:
    assert not isinstance(error, CONNECTION_ERRORS)


class Connection:
    """aio-pika's connection as `open_channel` sees it: aiormq's under it may be closed while aio-pika's is not."""

    def __init__(self, lost: bool, refusal: RuntimeError) -> None:
        self.is_closed, self.refusal = False, refusal
        self.transport = SimpleNamespace(connection=SimpleNamespace(is_closed=lost))

    async def channel(self, publisher_confirms: bool = True) -> None:
        raise self.refusal


async def test_a_channel_refused_with_a_runtime_error_is_a_lost_connection_only_when_the_connection_is_gone() -> None:
    closed = RuntimeError('<Connection: "amqp://guest:******@127.0.0.1:5672/"> closed')  # aiormq's words
    with pytest.raises(ConnectionError) as lost:
        await open_channel(Connection(lost=True, refusal=closed))  # type: ignore[arg-type]  # a fake connection
    assert lost.value.__cause__ is closed
    bug = RuntimeError("a bug")
    with pytest.raises(RuntimeError) as raised:
        await open_channel(Connection(lost=False, refusal=bug))  # type: ignore[arg-type]  # a fake connection
    assert raised.value is bug
