"""/readyz: how the services' answers are judged (the checks themselves: tests/integration/test_readiness.py)."""

from services.gateway.readiness import judge


def test_a_service_that_says_it_is_not_ready_is_named_and_makes_it_503() -> None:
    checks = {"broker": True, "database": True, "event_log": True}
    services = {
        "leads": {"service": "leads", "ready": True},
        "sms": {"service": "sms", "ready": False, "reasons": ["2 messages held past 60 s"]},
        "documents": {"service": "documents", "answer": None},
    }  # silent: shown, not judged
    status, body = judge(checks, services)
    assert (status, body["status"], body["not_ready"]) == (503, "not ready", {"sms": ["2 messages held past 60 s"]})
    assert body["services"] == services
    del services["sms"]
    assert judge(checks, services)[0] == 200 and judge(checks, services)[1]["not_ready"] == {}
    assert judge({**checks, "database": False}, services)[0] == 503
