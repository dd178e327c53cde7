"""A bulk publisher for the bench: many events onto one exchange, persistent, each confirmed, in order.

Why not aio-pika: it builds and encodes three frames per message in Python (aio_pika.Message, pamqp), about
300 µs of our CPU per event on this machine, so the 100,000 events of `bench.resume` took 90 s to publish
on a busy 2-core box. Here the connection is opened with pamqp (the handshake, Confirm.Select) and each
publish is written as bytes put together with struct: the exchange and routing key are the same for all,
only the body, message id and `x-org-id` header change. What it writes is what `publish_events`
(tests/support/realtime.py) writes: delivery mode 2, message_id, headers {x-org-id}.

    connect ─ Start/StartOk (PLAIN) ─ Tune/TuneOk (no heartbeat) ─ Open ─ Channel.Open ─ Confirm.Select
    publish ─ frames of up to WINDOW unconfirmed messages ─ Basic.Ack (multiple) ─ ... ─ all confirmed
    close ─ Connection.Close/CloseOk

A Basic.Nack, a channel or connection closed by the broker raise RuntimeError with its words.
"""

import asyncio
import struct
from contextlib import suppress
from typing import Any
from urllib.parse import unquote, urlsplit

from pamqp import commands, frame, header

FRAME_END = b"\xce"
WINDOW = 5000  # unconfirmed messages at most: the broker's flow control still works, our memory stays small
CHANNEL = 1
MAX_BODY = 131_072 - 8  # one body frame at RabbitMQ's default frame_max
# Basic properties present: headers, delivery mode, message id (AMQP 0-9-1 property flags, bit 15 first).
FLAGS = (1 << 13) | (1 << 12) | (1 << 7)


def _frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", kind, CHANNEL, len(payload)) + payload + FRAME_END


def _short(text: str) -> bytes:
    data = text.encode()
    return bytes([len(data)]) + data


def message(exchange: str, routing_key: str, body: bytes, message_id: str, org: str) -> bytes:
    """The three frames of one persistent publish (method, content header, body)."""
    if len(body) > MAX_BODY:
        raise ValueError(f"a body of {len(body)} bytes needs more than one frame")
    method = struct.pack(">HHH", 60, 40, 0) + _short(exchange) + _short(routing_key) + b"\x00"
    org_value = org.encode()
    entry = _short("x-org-id") + b"S" + struct.pack(">I", len(org_value)) + org_value
    properties = struct.pack(">H", FLAGS) + struct.pack(">I", len(entry)) + entry + b"\x02" + _short(message_id)
    content = struct.pack(">HHQ", 60, 0, len(body)) + properties
    return _frame(1, method) + _frame(2, content) + _frame(3, body)


class Publisher:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader, self._writer = reader, writer
        self.sent = 0  # messages published on the channel: the last one's delivery tag
        self.confirmed = 0  # the highest delivery tag the broker confirmed
        self._changed = asyncio.Event()

    @classmethod
    async def connect(cls, amqp_url: str) -> "Publisher":
        url = urlsplit(amqp_url)
        reader, writer = await asyncio.open_connection(url.hostname or "127.0.0.1", url.port or 5672)
        self = cls(reader, writer)
        writer.write(frame.marshal(header.ProtocolHeader(), 0))
        await self._expect(commands.Connection.Start)
        login = f"\0{unquote(url.username or 'guest')}\0{unquote(url.password or 'guest')}"
        self._send(commands.Connection.StartOk(client_properties={}, response=login), 0)
        tune = await self._expect(commands.Connection.Tune)
        self._send(commands.Connection.TuneOk(tune.channel_max, tune.frame_max, 0), 0)
        self._send(commands.Connection.Open(unquote(url.path[1:]) or "/"), 0)
        await self._expect(commands.Connection.OpenOk)
        self._send(commands.Channel.Open(), CHANNEL)
        await self._expect(commands.Channel.OpenOk)
        self._send(commands.Confirm.Select(), CHANNEL)
        await self._expect(commands.Confirm.SelectOk)
        return self

    def _send(self, command: Any, channel: int) -> None:
        self._writer.write(frame.marshal(command, channel))

    async def _frame(self) -> Any:
        head = await self._reader.readexactly(7)
        _, _, size = struct.unpack(">BHI", head)
        _, _, value = frame.unmarshal(head + await self._reader.readexactly(size + 1))
        if isinstance(value, commands.Channel.Close | commands.Connection.Close):
            raise RuntimeError(f"the broker closed the {type(value).__qualname__}: {value.reply_text}")
        return value

    async def _expect(self, kind: type) -> Any:
        value = await self._frame()
        if not isinstance(value, kind):
            raise RuntimeError(f"expected {kind.__qualname__} from the broker, got {value!r}")
        return value

    async def _confirms(self) -> None:
        try:
            while True:
                value = await self._frame()
                if isinstance(value, commands.Basic.Nack):
                    raise RuntimeError(f"the broker refused message {value.delivery_tag}")
                if isinstance(value, commands.Basic.Ack):
                    self.confirmed = max(self.confirmed, value.delivery_tag)
                    self._changed.set()
        finally:
            self._changed.set()  # (an error: the waiter sees it)

    async def _until(self, confirmed: int, reading: asyncio.Task[None]) -> None:
        while self.confirmed < confirmed:
            if reading.done():
                reading.result()  # its error: a stream of frames never ends by itself
            self._changed.clear()
            await self._changed.wait()

    async def publish(self, frames: list[bytes]) -> None:
        """Every message (`message(...)`) in order; returns once the broker confirmed them all."""
        reading = asyncio.create_task(self._confirms())
        step = WINDOW // 2
        try:
            for start in range(0, len(frames), step):
                await self._until(self.sent - step, reading)  # at most WINDOW unconfirmed
                chunk = frames[start : start + step]
                self._writer.write(b"".join(chunk))
                self.sent += len(chunk)
                await self._writer.drain()
            await self._until(self.sent, reading)
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)

    async def close(self) -> None:
        """Say goodbye (when the connection still allows it) and close the socket."""
        try:
            with suppress(OSError, EOFError, RuntimeError, TimeoutError):  # gone already: nothing to say
                self._send(commands.Connection.Close(200, "done", 0, 0), 0)
                await asyncio.wait_for(self._expect(commands.Connection.CloseOk), 5)
        finally:
            self._writer.close()
