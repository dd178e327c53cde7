"""Time of day in tests: a campaign's send window is local to each lead, and CI runs at any hour."""

from datetime import UTC, datetime


def noon_zone() -> str:
    """An IANA zone whose local time is 12:xx now: inside any default send window (08:00-21:00), and
    02:00-03:00 there is surely shut. Etc/GMT+N is N hours behind UTC (POSIX signs)."""
    behind = datetime.now(UTC).hour - 12
    return f"Etc/GMT{'+' if behind >= 0 else '-'}{abs(behind)}"
