"""The Python client's refusals (crm_client/problems.py, generated from shared/problems.py): a class per row
with the server's name, row and relations, each still the error the client raised for its status before;
a problem answer raised as the class of its type, or of its status when the type is not in the table."""

import crm_client
import pytest
from crm_client import errors
from crm_client import problems as client
from crm_client.http import Retryable, classify, rejected, unreachable

from shared import problems as server


def made(refusal: type[server.Rejected]) -> server.Rejected:
    """The refusal as a service or the gateway raises it."""
    return refusal("m-1") if refusal is server.KeyReused else refusal("the reason")  # KeyReused: a message id


def test_every_row_of_the_table_has_its_class() -> None:
    for refusal, (status, title, type_) in server.PROBLEMS.items():
        mine = getattr(client, refusal.__name__)
        assert (mine.status, mine.title, mine.type) == (status, title, type_), refusal
        assert issubclass(mine, crm_client.Rejected)
        parent = refusal.__bases__[0]
        if parent is not server.Rejected:  # InvalidMessage(Invalid)
            assert issubclass(mine, getattr(client, parent.__name__)), refusal


def test_the_registry_is_the_servers_most_general_class_of_each_type() -> None:
    assert {t: c.__name__ for t, c in client.BY_TYPE.items()} == {t: c.__name__ for t, c in server.BY_TYPE.items()}
    assert client.BY_TYPE["/problems/too-large"] is client.TooLarge
    classes: list[type[crm_client.Rejected]] = [
        c
        for c in vars(client).values()
        if isinstance(c, type) and issubclass(c, crm_client.Rejected) and c.__module__ == client.__name__
    ]
    assert len(classes) == len(server.PROBLEMS)
    assert all(issubclass(c, client.BY_TYPE[c.type]) for c in classes)


@pytest.mark.parametrize(
    ("refusal", "raised_before"),
    [
        (client.ForbiddenMove, crm_client.Conflict),
        (client.StatusConflict, crm_client.Conflict),
        (client.Invalid, crm_client.Invalid),
        (client.MalformedJson, crm_client.Invalid),
        (client.NotFound, crm_client.NotFound),
        (client.Unauthorized, crm_client.Unauthorized),
        (client.BadSignature, crm_client.Unauthorized),
        (client.TooLarge, crm_client.Refused),
        (client.RangeNotSatisfiable, crm_client.Refused),
        (client.ContentMissing, crm_client.ServerError),
        (client.CommandParked, crm_client.ServerError),
        (client.Unavailable, crm_client.Unreachable),
    ],
)
def test_each_class_is_still_what_the_client_raised_for_it(refusal: type, raised_before: type) -> None:
    assert issubclass(refusal, raised_before)


def test_every_4xx_class_is_the_refusal_of_its_status() -> None:
    for refusal, (status, _, _) in server.PROBLEMS.items():
        if status < 500:
            assert issubclass(getattr(client, refusal.__name__), type(errors.refusal(status, {}))), refusal


def test_a_refusal_of_the_server_arrives_as_its_class() -> None:
    for refusal in server.PROBLEMS:
        sent = made(refusal)
        error = rejected(sent.status, sent.body)
        assert type(error) is client.BY_TYPE[sent.type], refusal
        assert (error.status, error.type, error.title, error.detail) == (
            sent.status,
            sent.type,
            sent.body["title"],
            sent.body["detail"],
        )
        assert error.body == error.problem == sent.body


def test_the_fields_a_refusal_adds_ride_in_the_body() -> None:
    sent = server.ForbiddenMove("lead 1 cannot move from won to new", currentStatus="won")
    error = rejected(sent.status, sent.body)
    assert isinstance(error, client.ForbiddenMove) and isinstance(error, crm_client.Conflict)
    assert error.body["currentStatus"] == "won"
    assert str(error) == "409 Status change not allowed: lead 1 cannot move from won to new"


@pytest.mark.parametrize(
    ("status", "raised"),
    [(404, crm_client.NotFound), (405, crm_client.Refused), (422, crm_client.Invalid), (500, crm_client.ServerError)],
)
def test_a_problem_of_another_type_is_the_error_of_its_status(status: int, raised: type[crm_client.Rejected]) -> None:
    error = rejected(status, server.http_error(status, "Some title", "GET /x: some title"))
    assert type(error) is raised
    assert (error.type, error.title, error.detail) == ("about:blank", "Some title", "GET /x: some title")
    assert type(rejected(409, {"type": "/problems/not-ours", "status": 409})) is crm_client.Conflict


def test_a_parked_command_is_final_and_an_unavailable_gateway_is_retried_then_typed() -> None:
    classify(503, {}, server.CommandParked("parked").body)  # not retried: waiting changes nothing
    body = server.Unavailable("the leads service did not answer in time").body
    with pytest.raises(Retryable) as retried:
        classify(503, {"Retry-After": "1"}, body)
    error = unreachable(retried.value)  # after the last retry
    assert type(error) is client.Unavailable and isinstance(error, crm_client.Unreachable)
    assert (error.status, error.problem, error.detail) == (503, body, "the leads service did not answer in time")
    with pytest.raises(Retryable) as away:
        classify(502, {}, None)
    assert type(unreachable(away.value)) is crm_client.Unreachable and unreachable(away.value).problem is None


def test_a_type_answered_with_another_status_is_the_error_of_its_status_and_retried_as_one() -> None:
    """A proxy's 502 page (or a foreign server) that carries one of our types is judged by its status."""
    not_found = server.NotFound("lead 1 does not exist").body
    error = rejected(502, not_found)
    assert type(error) is crm_client.ServerError and error.status == 502
    with pytest.raises(Retryable):
        classify(502, {}, not_found)


@pytest.mark.parametrize(
    "body",
    [
        {"type": 123, "title": None, "detail": None},
        {"type": ["/problems/not-found"], "status": 404},
        {"type": None},
        {},
        {"type": "/problems/not-found", "title": "x" * 100_000, "detail": "y" * 1_000_000},
    ],
)
def test_a_hostile_problem_body_is_still_an_error_of_its_status(body: dict) -> None:
    error = rejected(404, body)
    assert isinstance(error, crm_client.NotFound) and error.status == 404
    assert "None" not in (error.title, error.detail) and len(str(error)) < 3000
