"""structlog set-up: key-value events, JSON when not on a terminal.

Ids (command id, correlation id, org id) are bound once per message through
contextvars (`bind`), so every line on a command's path carries them.
"""
import logging
import sys

import structlog
from structlog.contextvars import bound_contextvars as bind  # noqa: F401  (re-exported)


def configure(level: str = "INFO", json: bool | None = None) -> None:
    if json is None:
        json = not sys.stderr.isatty()
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (aio-pika, FastStream, aiohttp) log through the standard library.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")


def get(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
