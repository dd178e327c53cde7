"""Every named refusal is in the one table, and is answered as the table says."""

from shared import problems
from shared.problems import PROBLEMS, ForbiddenMove, Rejected


def _all(cls: type[Rejected]) -> set[type[Rejected]]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *_all(direct)}}


def test_every_refusal_has_its_row() -> None:
    named = {c for c in _all(Rejected) if c.__module__ == problems.__name__}
    assert named and named <= set(PROBLEMS), sorted(c.__name__ for c in named - set(PROBLEMS))
    assert len({row[2] for row in PROBLEMS.values()}) == len(PROBLEMS)  # one problem type each


def test_a_refusal_is_answered_from_its_row() -> None:
    reply = ForbiddenMove("lead 1 cannot move from won to new", currentStatus="won").reply()
    assert reply.status == 409
    assert reply.body == {
        "type": "/problems/forbidden-status-change",
        "title": "Status change not allowed",
        "status": 409,
        "detail": "lead 1 cannot move from won to new",
        "currentStatus": "won",
    }
