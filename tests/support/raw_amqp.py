"""Publish what no well-behaved AMQP client would: values aio-pika and pamqp refuse to encode.

`Raw(bytes)` in a message's headers or properties is written to the wire as those very bytes (its AMQP type
letter included, for a header's value): a long string that is not UTF-8, a short string that is not UTF-8,
a 64-bit integer with its top bit set, a timestamp past the year 9999, a header's name that is not UTF-8.
`install()` patches pamqp's encoder in this (test) process only; every other value encodes as before.
"""

import struct
import time
from datetime import datetime
from typing import Any

import aio_pika
import aiormq
from pamqp import common, encode


class Raw(str):
    """A value written as `raw` (a str, so aio-pika passes it along untouched)."""

    raw: bytes

    def __new__(cls, raw: bytes) -> "Raw":
        value = super().__new__(cls, f"<raw {raw[:20]!r}>")
        value.raw = raw
        return value


def long_string(data: bytes) -> Raw:
    return Raw(b"S" + struct.pack(">I", len(data)) + data)


def long_long(pattern: int) -> Raw:
    """A signed 64-bit field holding `pattern`'s low 64 bits (2**63: the top bit set)."""
    return Raw(b"l" + (pattern & (2**64 - 1)).to_bytes(8, "big"))


def timestamp(seconds: int) -> Raw:
    return Raw(b"T" + struct.pack(">Q", seconds))


def table_with_name(name: bytes, value: bytes = b"S\x00\x00\x00\x01a") -> Raw:
    """A whole headers table of one entry whose name is `name` (may be any bytes)."""
    entry = bytes([len(name)]) + name + value
    return Raw(struct.pack(">I", len(entry)) + entry)


def short_string(data: bytes) -> Raw:
    """A short-string property (message_id, correlation_id, reply_to...) of these bytes."""
    return Raw(bytes([len(data)]) + data)


_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    plain_value, plain_string, plain_table, plain_timestamp = (
        encode.encode_table_value,
        encode.short_string,
        encode.field_table,
        encode.timestamp,
    )

    def table_value(value: common.FieldArray | common.FieldTable | common.FieldValue) -> bytes:
        return value.raw if isinstance(value, Raw) else plain_value(value)

    def short(value: str) -> bytes:
        return value.raw if isinstance(value, Raw) else plain_string(value)

    def table(value: common.FieldTable | Raw) -> bytes:
        return value.raw if isinstance(value, Raw) else plain_table(value)

    def stamp(value: datetime | time.struct_time | Raw) -> bytes:
        return value.raw[1:] if isinstance(value, Raw) else plain_timestamp(value)

    encode.encode_table_value, encode.short_string, encode.field_table, encode.timestamp = (
        table_value,
        short,
        table,
        stamp,
    )
    encode.METHODS.update(shortstr=short, table=table, timestamp=stamp)
    _installed = True


class RawMessage(aio_pika.Message):
    """A message whose properties are set as given, past aio-pika's conversions (`str(...)`)."""

    def __init__(self, body: bytes, raw_properties: dict[str, object], **kwargs: Any):
        super().__init__(body, **kwargs)
        self.raw_properties = raw_properties

    @property
    def properties(self) -> aiormq.spec.Basic.Properties:
        properties = super().properties
        for name, value in self.raw_properties.items():
            setattr(properties, name, value)
        return properties
