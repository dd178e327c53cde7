"""GET /api/buttons is made from the rows (shared/buttons.py, services/gateway/catalog.py), and the console
types none of it again: no path under /api but the table's own, no problem type."""

import hashlib
import json
import re
from pathlib import Path

from aiohttp import web

from services.gateway.catalog import PUBLIC, ROUTES, SCHEMAS, ButtonTable, published, table
from services.gateway.openapi import document
from services.gateway.routes import setup_routes
from shared.buttons import BUTTONS, READS
from shared.contracts.declare import EVERY_BUTTON
from shared.problems import PROBLEMS

STATIC = Path(__file__).resolve().parents[2] / "services" / "gateway" / "static"
TYPES = {type_ for _, _, type_ in PROBLEMS.values()}


def test_every_button_is_in_the_table_as_its_row_says() -> None:
    buttons = table().buttons
    assert list(buttons) == [b.name for b in BUTTONS]
    for row in BUTTONS:
        entry = buttons[row.name]
        assert (entry.method, entry.path, entry.fields, entry.selector, entry.upload, entry.status) == (
            "POST",
            row.path,
            list(row.fields),
            row.selector,
            row.upload,
            row.status,
        )
        assert entry.body == SCHEMAS + row.command.__name__ and entry.reply == SCHEMAS + row.reply.__name__
        assert entry.events == [e.TYPE for e in row.events]
        own = {PROBLEMS[r][2] for r in row.refusals}
        every = {PROBLEMS[r][2] for r in EVERY_BUTTON}
        assert own | every <= set(entry.refusals) <= TYPES, row.name
    assert buttons["update_lead_status"].fields == [] and buttons["start_campaign"].fields == ["campaignId"]
    assert {
        "/problems/forbidden-status-change",
        "/problems/status-conflict",
        "/problems/not-found",
        "/problems/validation",
        "/problems/unauthorized",
        "/problems/unavailable",
    } <= set(buttons["update_lead_status"].refusals)
    assert "/problems/too-large" in buttons["attach_document"].refusals  # an upload's own
    assert "/problems/malformed-json" not in buttons["attach_document"].refusals


def test_every_read_and_route_is_in_the_table() -> None:
    published_table = table()
    assert list(published_table.reads) == [r.name for r in READS]
    for row in READS:
        entry = published_table.reads[row.name]
        assert (entry.method, entry.path, entry.fields) == ("GET", row.path, list(row.fields))
        assert set(entry.refusals) <= TYPES and entry.reply == SCHEMAS + row.reply.__name__
    assert published_table.reads["list_leads"].query == ["status", "limit", "cursor"]
    assert published_table.reads["get_lead"].query == [] and published_table.reads["get_lead"].fields == ["leadId"]
    assert list(published_table.routes) == [r.name for r in ROUTES]
    assert published_table.routes["button_table"].public and not published_table.routes["lead_statuses"].public


def test_the_problems_are_the_one_table_keyed_by_type() -> None:
    problems = table().problems
    assert set(problems) == TYPES
    for refusal, (status, title, type_) in PROBLEMS.items():
        assert problems[type_].status == status
        if problems[type_].name == refusal.__name__:
            assert problems[type_].title == title
    assert problems["/problems/opted-out"].name == "OptedOut"
    assert problems["/problems/too-large"].name == "TooLarge"


def test_the_schemas_it_points_to_are_in_the_openapi_document() -> None:
    schemas = document()["components"]["schemas"]
    published_table = table()
    refs = [
        *(ref for b in published_table.buttons.values() for ref in (b.body, b.reply)),
        *(r.reply for r in published_table.reads.values()),
    ]
    for ref in refs:
        assert ref.startswith(SCHEMAS) and ref.removeprefix(SCHEMAS) in schemas, ref
    assert "ButtonTable" in schemas


def test_the_body_is_made_once_and_its_etag_is_its_hash() -> None:
    body, etag = published()
    assert published() == (body, etag)
    assert etag == f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    assert ButtonTable.model_validate_json(body) == table()


def test_every_route_row_is_routed_and_documented_from_the_same_row() -> None:
    app = web.Application()
    setup_routes(app)
    routed = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    paths = document()["paths"]
    for row in ROUTES:
        assert (row.method, row.path) in routed, row.name
        operation = paths[row.path][row.method.lower()]
        assert operation["operationId"] == row.name
        assert (operation.get("security") == []) == row.public
        for refusal in row.refusals:
            assert str(PROBLEMS[refusal][0]) in operation["responses"], (row.name, refusal)
    assert {"/api/buttons"} == PUBLIC
    button = paths["/api/leads/update-status"]["post"]
    assert "/problems/status-conflict" in button["x-refusals"] and button["x-events"] == ["leads.status_changed"]


def test_the_console_types_no_button_path_and_no_problem_type() -> None:
    scripts = {path.name: path.read_text() for path in STATIC.glob("*.js")}
    assert "table.js" in scripts
    for row in BUTTONS:  # a path with its {fields} as anything: "/api/campaigns/${c.id}/start" too
        pattern = re.compile(re.sub(r"\\\{\w+\\\}", "[^/\"'`]+", re.escape(row.path)) + r"(?![\w/-])")
        for name, text in scripts.items():
            assert not pattern.search(text), f"{name} types the path of {row.name}: build it from the table (table.js)"
    for name, text in scripts.items():
        assert set(re.findall(r"/api/[\w/{}$.-]*", text)) <= {"/api/buttons"}, f"{name} types a path under /api"
        assert "/problems/" not in text, f"{name} types a problem type: key by its name (table.js's problem())"


def test_the_table_is_plain_json() -> None:
    body, _ = published()
    assert set(json.loads(body)) == {"buttons", "reads", "routes", "problems"}
