"""structlog set-up: key-value events, JSON when not on a terminal.

Ids (command id, correlation id, org id) are bound once per message through
contextvars (`bind`), so every line on a command's path carries them.
"""

import logging
import sys

import structlog
from structlog.contextvars import bound_contextvars as bind  # noqa: F401  (re-exported)
from structlog.typing import Processor

SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(level: str = "INFO", json: bool | None = None) -> None:
    if json is None:
        json = not sys.stderr.isatty()
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*SHARED, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (aio-pika, aiormq, FastStream, aiohttp) log through the standard library:
    # the same renderer, so a log file is one JSON object per line, tracebacks included.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*SHARED, structlog.stdlib.add_logger_name, structlog.processors.format_exc_info],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def library_logger(name: str, level: str) -> logging.Logger:
    """A standard-library logger for a library that takes one (FastStream), rendered like ours."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.getLevelName(level))
    return logger


def get(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


def printable(value: object, limit: int = 100) -> str:
    """A value from outside (a message's id, a header) as it may be logged: at most `limit` characters of it,
    whatever its type or size."""
    text = value if isinstance(value, str) else repr(value)
    return text[:limit].encode("utf-8", errors="backslashreplace").decode()  # lone surrogates (not UTF-8) escaped
