"""Lenient decoding of delivered messages' properties: a hostile one must reach our parsing, not kill a connection.

pamqp (under aiormq and aio-pika) decodes each delivered message's properties in the connection's frame
reader. A short string that is not UTF-8 (a `message_id`, a `correlation_id`, a header's name...) or a
timestamp past the year 9999 (the `timestamp` property, or a header of type T) raises there: the reader
ends, the connection drops, the unacknowledged message goes back to its queue and is delivered again, and
again. One message published by anyone would stop a service for every organisation, for good. (Found by
the header fuzz, tests/integration/test_broker_headers.py.)

pamqp already decodes a *long* string that is not UTF-8 as bytes (gmr/pamqp#40), not yet a short one (4.0.1,
the latest release). `install()` makes the rest lenient: a short string's undecodable bytes become lone
surrogates, a timestamp too late for a datetime the latest one; the message reaches the pipeline, whose
own parsing refuses it with a 422 and acks it (shared/messages.py, `properties`). Everything else pamqp
decodes as before.
"""

import datetime
import struct

from pamqp import common, decode

_installed = False


def short_str(value: bytes) -> tuple[int, str]:
    """pamqp's, but bytes that are not UTF-8 are given with their undecodable bytes as lone surrogates
    (`surrogateescape`) instead of raising: aio-pika turns whatever it is given into `str` (bytes would become
    their repr, a printable and so acceptable id), and no parsing of ours takes a lone surrogate as text."""
    try:
        length = common.Struct.byte.unpack(value[0:1])[0]
    except (struct.error, TypeError) as err:
        raise ValueError("Could not unpack short string value") from err
    return length + 1, value[1 : length + 1].decode("utf-8", errors="surrogateescape")


def timestamp(value: bytes) -> tuple[int, datetime.datetime]:
    """pamqp's, but a moment no datetime can hold (past the year 9999) is given as the latest one instead of
    raising (aio-pika takes nothing but a datetime there)."""
    try:
        return _timestamp(value)
    except (ValueError, OverflowError, OSError):  # "year 58454 is out of range"
        if len(value) < 8:
            raise  # cut short: pamqp's own error is the right one
        return 8, datetime.datetime.max.replace(tzinfo=datetime.UTC)


def field_table(value: bytes) -> tuple[int, common.FieldTable]:
    """pamqp's, but a header's name that is not UTF-8 is read as `short_str` reads it instead of raising."""
    try:
        return _field_table(value)
    except UnicodeDecodeError:
        pass
    length = common.Struct.integer.unpack(value[0:4])[0]
    offset, end, table = 4, 4 + length, {}
    while offset < end:  # the checks of lengths were made by the first reading, which got as far as a name
        key_length = common.Struct.byte.unpack_from(value, offset)[0]
        key = value[offset + 1 : offset + 1 + key_length].decode("utf-8", errors="surrogateescape")
        offset += 1 + key_length
        consumed, table[key] = decode.embedded_value(value[offset:])
        offset += consumed
    return end, table


_timestamp, _field_table = decode.timestamp, decode.field_table


def install() -> None:
    """Idempotent; called by every process that consumes from the broker, before it connects."""
    global _installed
    if _installed:
        return
    decode.short_str = short_str  # field_table looks it up by name for every header's name
    decode.timestamp = timestamp
    decode.METHODS["shortstr"] = short_str  # properties are decoded through these tables
    decode.METHODS["timestamp"] = timestamp
    decode.METHODS["table"] = field_table
    decode.TABLE_MAPPING[b"T"] = timestamp
    decode.TABLE_MAPPING[b"F"] = field_table
    _installed = True
