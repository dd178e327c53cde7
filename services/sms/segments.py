"""How many SMS segments a body takes, counted the way carriers (and Twilio) bill them.

A body made only of GSM 03.38 characters is sent as GSM-7: 160 septets in one
message, 153 per part once it needs several (each part gives 7 septets to the
concatenation header). The extension table characters (€ [ ] { } ^ ~ | \\ and
form feed) are sent as an escape plus a septet, so they count 2. Any other
character makes the whole body UCS-2: 70 UTF-16 code units in one message, 67
per part; an emoji outside the Basic Multilingual Plane is a surrogate pair and
counts 2.

A character is never split across two parts (an escape pair or a surrogate pair
stays whole), so a part may end one unit short and a body can need one part
more than `ceil(units / per_part)`.
"""

from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
LIMITS: dict[Encoding, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


def segments(body: str) -> tuple[Encoding, int]:
    """The encoding of `body` and the number of segments it takes (an empty body is still one message)."""
    encoding: Encoding = "GSM-7" if all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in body) else "UCS-2"
    single, per_part = LIMITS[encoding]
    return encoding, _parts([_width(ch, encoding) for ch in body], single, per_part)


def _width(ch: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if ch in GSM_EXTENSION else 1
    return len(ch.encode("utf-16-le")) // 2


def _parts(widths: list[int], single: int, per_part: int) -> int:
    if sum(widths) <= single:
        return 1
    parts, room = 1, per_part
    for width in widths:
        if width > room:  # it would straddle two parts: it opens the next one instead
            parts, room = parts + 1, per_part
        room -= width
    return parts
