"""At start a service waits for a database or broker that is away, and only for that (shared/service.py)."""

import ssl

import aio_pika
import asyncpg
import pytest

from shared.loops import unreachable as _unreachable


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        OSError("Multiple exceptions: [Errno 111] ..."),
        TimeoutError(),
        aio_pika.exceptions.AMQPConnectionError("refused"),
        asyncpg.CannotConnectNowError("starting up"),
        asyncpg.AdminShutdownError("shutting down"),
        asyncpg.TooManyConnectionsError("too many clients"),
        asyncpg.TargetServerAttributeNotMatched("no host takes writes: a failover under way"),
    ],
)
def test_what_comes_back_by_itself_is_waited_for(error: BaseException) -> None:
    assert _unreachable(error)


@pytest.mark.parametrize(
    "error",
    [
        aio_pika.exceptions.ProbableAuthenticationError("ACCESS_REFUSED"),
        asyncpg.InvalidPasswordError("no"),
        ssl.SSLCertVerificationError("certificate verify failed"),
        FileNotFoundError("003_x.sql"),
        PermissionError("003_x.sql"),
        asyncpg.PostgresSyntaxError("a broken migration"),
        ValueError("a bug"),
    ],
)
def test_what_waiting_cannot_mend_fails_at_once(error: BaseException) -> None:
    assert not _unreachable(error)
