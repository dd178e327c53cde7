"""One socket's protocol: its origin, its hello, its token's life (refresh, expiry), its sender, its goodbye.

Guarantee: a socket becomes a screen only through a valid hello within `hello_timeout` (none: 4408,
malformed: 4400, a bad token: 4401), and only once the event log is readable (1011 otherwise); nothing
reaches it before its welcome (replay.py). Its token is checked again when it expires (4401), and is
replaced only by a refresh for the same organisation and user (4403 otherwise; a bad one: 4401). When
the socket ends, its screen leaves the hub and its tasks end with it: a client that vanished is a
goodbye; anything else a task raised is logged with its traceback.

    GET /ws ─► origin ─► prepare ─► hello ─► log ready ─► join ─► welcome (replay.py) ─► messages ─► leave
"""

import asyncio
import json
import time
from contextlib import suppress
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from services.gateway.auth import BadToken, TokenRules, decode
from services.gateway.stream import Reader
from services.gateway.ws.screen import BAD_MESSAGE, BAD_TOKEN, HELLO_TIMEOUT, LOG_UNAVAILABLE, OTHER_PRINCIPAL, Screen
from shared import logging, metrics
from shared.contracts import realtime
from shared.problems import OriginRefused

if TYPE_CHECKING:  # (the hub serves its sockets through this module)
    from services.gateway.ws.hub import Hub

log = logging.get("gateway.ws")
MAX_MESSAGE_BYTES = 1024**2  # a hello of 32 long topics is some 10 KB; aiohttp's own limit is 4 MB


async def serve(hub: "Hub", request: web.Request) -> web.WebSocketResponse:
    origin = request.headers.get("Origin")
    if hub.allowed_origins and origin not in hub.allowed_origins:
        raise OriginRefused(f"origin {logging.printable(origin)!r} may not open a websocket here")  # 100 chars at most
    # Protocol pings every interval; no pong within half of it closes the socket (aiohttp's rule).
    ws = web.WebSocketResponse(heartbeat=hub.ping_interval, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    hello = await _hello(ws, hub.secret, hub.queue_size, hub.hello_timeout)
    if hello is None:
        return ws
    screen, resume = hello
    reader = await _log_ready(hub.reader, hub.hello_timeout)
    if reader is None:
        await ws.close(code=LOG_UNAVAILABLE, message=b"the event log is unavailable: try again")
        return ws
    hub.join(screen)
    metrics.WEBSOCKETS.inc()
    sender = asyncio.create_task(_send(screen), name="ws.send")
    screen.expiry = _expire_at(screen)
    try:
        await hub.replays.start(screen, resume, reader)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                _on_message(screen, message.data, hub.secret)
            elif message.type == WSMsgType.ERROR:
                break
    finally:
        if screen.expiry is not None:
            screen.expiry.cancel()
        hub.leave(screen)
        metrics.WEBSOCKETS.dec()
        for task in (sender, screen.replay):
            if task is not None:
                await _end(task)
    return ws


async def _hello(
    ws: web.WebSocketResponse, rules: TokenRules | str, queue_size: int, timeout: float
) -> tuple[Screen, realtime.Resume | None] | None:
    try:
        message = await ws.receive(timeout=timeout)
    except TimeoutError:
        await ws.close(code=HELLO_TIMEOUT, message=b"no hello in time")
        return None
    try:
        hello = realtime.parse_hello(message.data if message.type == WSMsgType.TEXT else None)
    except realtime.BadMessage as exc:
        await ws.close(code=BAD_MESSAGE, message=realtime.close_reason(str(exc)))
        return None
    try:
        principal = decode(hello.token, rules)
    except BadToken as exc:  # (decode turns any unreadable token into BadToken)
        await ws.close(code=BAD_TOKEN, message=realtime.close_reason(str(exc)))
        return None
    return Screen(ws, principal, list(hello.topics), asyncio.Queue(queue_size)), hello.resume


async def _log_ready(reader: Reader | None, timeout: float) -> Reader | None:
    """The live reader once it knows where the log ends (waiting up to `timeout` for it), else None."""
    if reader is None:
        return None
    with suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await reader.ready.wait()
    return reader if reader.ready.is_set() else None


def _on_message(screen: Screen, data: str, rules: TokenRules | str) -> None:
    try:
        message = realtime.parse_later(data)
    except realtime.BadMessage as exc:
        return screen.close(BAD_MESSAGE, realtime.close_reason(str(exc)))
    if isinstance(message, realtime.Refresh):
        _refresh(screen, message.token, rules)


def _refresh(screen: Screen, token: str, rules: TokenRules | str) -> None:
    """A new token for the same organisation and user replaces the socket's (and its expiry)."""
    try:
        principal = decode(token, rules)
    except BadToken as exc:
        return screen.close(BAD_TOKEN, realtime.close_reason(str(exc)))
    if (principal.org, principal.user) != screen.user:
        return screen.close(OTHER_PRINCIPAL, b"a refresh must be for the same organisation and user")
    screen.principal = principal
    if screen.expiry is not None:
        screen.expiry.cancel()
    screen.expiry = _expire_at(screen)
    screen.offer(json.dumps({"type": "refreshed", "expires_at": principal.expires_at}))


def _expire_at(screen: Screen) -> asyncio.TimerHandle:
    delay = max(0.0, screen.principal.expires_at - time.time())
    return asyncio.get_running_loop().call_later(delay, screen.close, BAD_TOKEN, b"token expired")


async def _send(screen: Screen) -> None:
    while not screen.ws.closed:
        frame = await screen.queue.get()
        await screen.ws.send_str(frame)


async def _end(task: asyncio.Task[None]) -> None:
    """Cancel one of the socket's tasks and wait for it."""
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, ConnectionError):  # a client that vanished fails the sender: a goodbye
        pass
    except Exception:
        log.exception("ws.task_failed", task=task.get_name())
