"""The published contracts come from the same pydantic models the code uses."""
import json
from pathlib import Path

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


def test_openapi_request_bodies_are_the_command_models() -> None:
    doc = document()
    body = doc["paths"]["/api/leads/update-status"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"oneOf": [{"$ref": "#/components/schemas/UpdateLeadStatus"},
                              {"$ref": "#/components/schemas/BulkUpdateLeadStatus"}]}
    assert doc["components"]["schemas"]["BulkUpdateLeadStatus"]["properties"]["leadIds"]["maxItems"] == 1000
