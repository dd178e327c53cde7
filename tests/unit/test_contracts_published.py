"""The published contracts come from the same pydantic models the code uses."""

import importlib
import json
from pathlib import Path

import pytest

from services.gateway.openapi import document
from services.leads.app import LeadsSettings, build

ROOT = Path(__file__).resolve().parents[2]


def test_asyncapi_lists_the_commands_and_events_and_matches_the_committed_copy(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("RETRY_DELAYS", raising=False)
    spec = json.loads(build(LeadsSettings()).app.schema.to_specification().to_json())
    assert {"leads.commands", "leads.created", "leads.status_changed"} <= set(spec["channels"])
    schemas = spec["components"]["schemas"]
    assert {"CreateLead", "UpdateLeadStatus", "BulkUpdateLeadStatus", "LeadStatusChangedEvent"} <= set(schemas)
    assert set(schemas["LeadStatusChanged"]["properties"]) == {"leadId", "from", "to", "changedAt", "by"}
    committed = json.loads((ROOT / "docs" / "asyncapi" / "leads.json").read_text())
    assert committed["components"] == spec["components"], "run `make asyncapi` to refresh docs/asyncapi/leads.json"


@pytest.mark.parametrize(
    ("service", "channels"),
    [
        ("bookings", {"bookings.commands", "appointments.created", "appointments.confirmed", "appointments.cancelled"}),
        ("proposals", {"proposals.commands", "proposals.sent", "payments.recorded", "contracts.signed"}),
        ("sms", {"sms.commands", "sms.sent", "sms.failed", "sms.status_changed", "sms.opt_out_changed"}),
        ("documents", {"documents.commands", "documents.attached", "documents.deleted"}),
    ],
)
def test_every_service_publishes_its_asyncapi(monkeypatch, service: str, channels: set[str]) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("RETRY_DELAYS", raising=False)
    module = importlib.import_module(f"services.{service}.app")
    spec = json.loads(module.build(module.SETTINGS()).app.schema.to_specification().to_json())
    assert channels <= set(spec["channels"])
    committed = json.loads((ROOT / "docs" / "asyncapi" / f"{service}.json").read_text())
    assert committed["components"] == spec["components"], "run `make asyncapi` to refresh docs/asyncapi/"


def test_openapi_request_bodies_are_the_command_models() -> None:
    doc = document()
    body = doc["paths"]["/api/leads/update-status"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {
        "oneOf": [
            {"$ref": "#/components/schemas/UpdateLeadStatus"},
            {"$ref": "#/components/schemas/BulkUpdateLeadStatus"},
        ]
    }
    assert doc["components"]["schemas"]["BulkUpdateLeadStatus"]["properties"]["leadIds"]["maxItems"] == 1000


def test_openapi_covers_every_button() -> None:
    paths = set(document()["paths"])
    assert {
        "/api/appointments",
        "/api/bookings/confirm",
        "/api/leads/send-sms",
        "/api/leads/{leadId}/sms-history",
        "/api/sms/templates",
        "/webhooks/twilio/status",
        "/webhooks/twilio/inbound",
    } <= paths


def test_the_client_is_generated_from_the_current_table() -> None:
    from shared.tools import clientgen

    assert clientgen.main(["--check"]) == 0, "run `make client` to regenerate crm_client/buttons.py and problems.py"


def test_the_js_sdk_is_generated_from_the_current_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.tools import jsgen

    assert jsgen.main(["--check"]) == 0, "run `make client` to regenerate clients/js/src's generated files"
    monkeypatch.setattr(jsgen, "SRC", tmp_path)  # and the check can fail: a stale (here, missing) file is reported
    assert jsgen.main(["--check"]) == 1


def test_every_button_and_read_is_routed_documented_and_in_the_client() -> None:
    from aiohttp import web
    from crm_client.buttons import CLI
    from crm_client.client import Client

    from services.gateway.routes import setup_routes
    from shared.buttons import BUTTONS, READS

    app = web.Application()
    setup_routes(app)
    routed = {(r.method, r.resource.canonical) for r in app.router.routes()}
    doc = document()
    for row in BUTTONS:
        operation = doc["paths"][row.path]["post"]
        assert row.routing_key in operation["x-routing-keys"] and ("POST", row.path) in routed
        assert callable(getattr(Client, row.name))
    for row in READS:
        assert doc["paths"][row.path]["get"]["operationId"] == row.name
        assert any(method == "GET" and path.endswith(row.path.rsplit("}", 1)[-1]) for method, path in routed)
        assert callable(getattr(Client, row.name))
    assert {e["method"] for e in CLI} == {r.name for r in (*BUTTONS, *READS) if r.cli}
