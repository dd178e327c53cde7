"""A TCP port that forwards to a server only while it is open: a database or a broker "coming up" later,
or one whose answers are held back for a while (`pause`): a publisher confirm that comes late."""

import asyncio
from contextlib import suppress
from urllib.parse import urlsplit, urlunsplit


def via(url: str, port: int) -> str:
    """`url` (postgresql:// or amqp://) with its host and port (all of them) replaced by 127.0.0.1:`port`."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"))


def first_host(url: str) -> tuple[str, int | None]:
    """The host and port of `url`, of its first host when it names several (a DATABASE_URL may)."""
    first = urlsplit(url).netloc.rpartition("@")[2].split(",")[0]
    target = urlsplit(f"//{first}")
    return target.hostname or "127.0.0.1", target.port


class Forward:
    def __init__(self, port: int, url: str):
        self.port, (self.host, self.target_port) = port, first_host(url)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self._answering = asyncio.Event()
        self._answering.set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def close(self) -> None:
        """No new connection, and every one under way cut."""
        self._answering.set()  # a paused copy would otherwise wait forever for a sink that is gone
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.close()
        if self.server is not None:
            await self.server.wait_closed()

    def pause(self) -> None:
        """Hold back what the server sends (the client's bytes still reach it); `resume` delivers it all."""
        self._answering.clear()

    def resume(self) -> None:
        self._answering.set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            self.writers.discard(writer)
            writer.close()  # the server is not there either: the client hears it at once
            return
        self.writers.add(up_writer)

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter, gate: asyncio.Event | None) -> None:
            try:
                with suppress(ConnectionError):
                    while data := await source.read(65536):
                        if gate is not None:
                            await gate.wait()
                        sink.write(data)
                        await sink.drain()
            finally:
                sink.close()
                self.writers.discard(sink)

        await asyncio.gather(
            copy(reader, up_writer, None), copy(up_reader, writer, self._answering), return_exceptions=True
        )
