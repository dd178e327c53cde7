"""Websockets: the event log fanned out to the open screens of one organisation, resumable without loss.

Protocol (docs/realtime.md): the client's first message is
    {"type": "hello", "token": "<JWT>", "topics": ["leads.*"], "resume": {"epoch": E, "position": P}}
The server answers {"type": "welcome", "epoch", "recovered", "position", ...}; with `recovered: true`
every matching event of the organisation after P follows in position order (the replay), then live
events, with no gap and no duplicate at the seam. Events: {"type": "event", "topic", "id", "position",
"epoch", "data", "occurred_at", "command_id"}; never another organisation's.

What a client may send, and its limits, is shared/contracts/realtime.py; patterns are matched by
services/gateway/topics.py. A replay reads its organisation's records from the archive (archive.py), the
rest from the log: a resume that would replay (or wait for a lagging head) takes one of `max_replays` slots,
at most `max_replays_per_user` of them per (organisation, user), until it is live; beyond either, 1013.

Close codes (shared/problems.py `CLOSES`): 4400 malformed message (the reason says what), 4401 token
missing, invalid or expired, 4403 a refresh for another principal, 4408 no hello in time, 1013 the client
read too slowly (its queue filled: resume) or too many replays (resume after a backoff), 1011 the event
log is unavailable (retry), 1001 the gateway is stopping (resume).

    protocol.py one socket: origin, hello, refresh, token expiry, its sender, its goodbye
    hub.py      the open screens, and the live records fanned out to them; pings; closing them all
    replay.py   the welcome, the replay of a resume, its seam with the live side, its slots
    screen.py   one screen's state and queue, the frames, the close codes
"""

from services.gateway.topics import topic_matches
from services.gateway.ws.hub import Hub
from services.gateway.ws.screen import TOO_MANY_REPLAYS, TOO_SLOW, Screen

__all__ = ["TOO_MANY_REPLAYS", "TOO_SLOW", "Hub", "Screen", "topic_matches"]  # (topic_matches: still from here)
