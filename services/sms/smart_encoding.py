"""Twilio's Smart Encoding: Unicode punctuation rewritten as its GSM-7 look-alike before a message goes.

With Smart Encoding on (a Messaging Service's setting, or `SmartEncoded=true` on a send) Twilio
replaces curly quotes, long dashes, the ellipsis, odd spaces and the like, but only when the whole
body then fits GSM-7: a body that keeps an emoji or another script is sent unchanged. The body
Twilio stores, and lists, is the rewritten one:

    “Hi” — it’s 10:00…   ──smart_encoded──►   "Hi" - it's 10:00...

`smart_encoded(body)` is what Twilio stores (the sandbox plays it); `comparable(body)` is what
reconciliation compares, on both sides. It rewrites without the GSM-7 condition: whether or not
Twilio rewrote a body, `comparable` of what it lists equals `comparable` of what we sent. The table
is the common part of Twilio's published list (and a few more): a character too many is harmless
(both sides are rewritten alike), a character Twilio rewrites and this table misses is not (that
body would not be recognised, and reconciliation would send it again).
"""

from services.sms.segments import segments

_REWRITES = {
    '"': "«»“”„‟″ʺˮ❝❞〝〞＂",
    "'": "‘’‛′ʹʻʼʽˈˊ´❛❜＇",
    "-": "‐‑‒–—―−⁃﹣－",
    ",": "‚，﹐",
    "/": "⁄∕⧸／",
    "\\": "⧵﹨＼",
    "|": "∣｜",
    "~": "∼～",
    "_": "＿",
    " ": "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000",
    "...": "…",
    "..": "‥",
    "1/4": "¼",
    "1/2": "½",
    "3/4": "¾",
}
TABLE = str.maketrans({ch: ascii_ for ascii_, chars in _REWRITES.items() for ch in chars})


def comparable(body: str) -> str:
    """`body` with every character of the table rewritten, whatever else it holds."""
    return body.translate(TABLE)


def smart_encoded(body: str) -> str:
    """The body Twilio sends (and stores) with Smart Encoding on: rewritten only if it then fits GSM-7."""
    rewritten = comparable(body)
    return rewritten if segments(rewritten)[0] == "GSM-7" else body
