"""A TCP port that forwards to a server only while it is open: a database or a broker "coming up" later."""
import asyncio
from contextlib import suppress
from urllib.parse import urlsplit, urlunsplit


def via(url: str, port: int) -> str:
    """`url` (postgresql:// or amqp://) with its host and port replaced by 127.0.0.1:`port`."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"))


class Forward:
    def __init__(self, port: int, url: str):
        target = urlsplit(url)
        self.port, self.host, self.target_port = port, target.hostname or "127.0.0.1", target.port
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def close(self) -> None:
        """No new connection, and every one under way cut."""
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.close()
        if self.server is not None:
            await self.server.wait_closed()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            self.writers.discard(writer)
            writer.close()  # the server is not there either: the client hears it at once
            return
        self.writers.add(up_writer)

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                with suppress(ConnectionError):
                    while data := await source.read(65536):
                        sink.write(data)
                        await sink.drain()
            finally:
                sink.close()
                self.writers.discard(sink)

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer), return_exceptions=True)
