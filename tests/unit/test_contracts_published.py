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


@pytest.mark.parametrize(("service", "channels"), [
    ("bookings", {"bookings.commands", "appointments.created", "appointments.confirmed"}),
    ("sms", {"sms.commands", "sms.sent", "sms.failed", "sms.status_changed", "sms.opt_out_changed"}),
])
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
    assert body == {"oneOf": [{"$ref": "#/components/schemas/UpdateLeadStatus"},
                              {"$ref": "#/components/schemas/BulkUpdateLeadStatus"}]}
    assert doc["components"]["schemas"]["BulkUpdateLeadStatus"]["properties"]["leadIds"]["maxItems"] == 1000


def test_openapi_covers_every_button() -> None:
    paths = set(document()["paths"])
    assert {"/api/appointments", "/api/bookings/confirm", "/api/leads/send-sms", "/api/leads/{leadId}/sms-history",
            "/api/sms/templates", "/webhooks/twilio/status", "/webhooks/twilio/inbound"} <= paths
