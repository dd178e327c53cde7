"""/metrics: the gateway's and each service's, in Prometheus' text format, moving with the presses."""

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Api
from tests.support.stack import Stack


async def scrape(api: Api, url: str) -> dict[tuple[str, tuple], float]:
    async with api.http.get(url) as response:
        assert response.status == 200 and response.content_type == "text/plain"
        text = await response.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, labels[k]) in ls for k in labels))


async def test_a_press_moves_the_gateway_and_service_metrics(api: Api, stack: Stack) -> None:
    leads = f"http://127.0.0.1:{stack.metrics_ports['leads']}/metrics"
    before_gateway, before_leads = await scrape(api, api.url + "/metrics"), await scrape(api, leads)
    lead = (await api.create_lead())["id"]
    assert (await api.post("/api/leads/update-status", {"leadId": lead, "status": "won"}))[0] == 200
    assert (await api.post("/api/leads/update-status", {"leadId": lead, "status": "new"}))[0] == 409
    after_gateway = await scrape(api, api.url + "/metrics")
    route = {"method": "POST", "route": "/api/leads/update-status"}
    assert (
        value(after_gateway, "crm_http_requests_total", **route, status="200")
        >= value(before_gateway, "crm_http_requests_total", **route, status="200") + 1
    )
    assert (
        value(after_gateway, "crm_http_requests_total", **route, status="409")
        >= value(before_gateway, "crm_http_requests_total", **route, status="409") + 1
    )
    after_leads = await scrape(api, leads)  # counted before the answer left the service: no wait needed
    done = {"service": "leads", "command": "leads.update_status"}
    assert (
        value(after_leads, "crm_commands_total", **done, outcome="done")
        >= value(before_leads, "crm_commands_total", **done, outcome="done") + 1
    )
    assert (
        value(after_leads, "crm_commands_total", **done, outcome="refused")
        >= value(before_leads, "crm_commands_total", **done, outcome="refused") + 1
    )
    assert value(after_leads, "crm_command_seconds_count", **done) >= 2
    assert any(n.startswith("faststream_") for n, _ in after_leads)  # FastStream's consume-side metrics
    assert ("crm_outbox_backlog", (("service", "leads"),)) in after_leads


async def test_metrics_name_no_organisation_or_id(api: Api, stack: Stack, org: str) -> None:
    lead = (await api.create_lead())["id"]
    for url in (api.url + "/metrics", f"http://127.0.0.1:{stack.metrics_ports['leads']}/metrics"):
        async with api.http.get(url) as response:
            text = await response.text()
        assert org not in text and lead not in text
