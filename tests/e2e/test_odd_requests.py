"""Requests the fuzzing found odd answers to: each now a clear 4xx problem."""

from tests.conftest import Api


async def test_a_webhook_with_an_unreadable_form_is_400_not_500(api: Api) -> None:
    for path in ("/webhooks/twilio/status", "/webhooks/twilio/inbound"):
        async with api.http.post(api.url + path, data=b"x", headers={"Content-Type": "multipart/form-data"}) as answer:
            assert answer.status == 400, await answer.text()
            assert answer.content_type == "application/problem+json"
            assert (await answer.json())["type"] == "/problems/malformed-form"


async def test_a_get_on_a_button_path_is_405_with_its_allow(api: Api) -> None:
    for path in ("/api/leads/update-status", "/api/leads/send-sms"):
        status, headers, body = await api.get(path)
        assert status == 405, body
        assert "POST" in headers["Allow"] and body["status"] == 405


async def test_a_bad_query_string_is_said_to_be_the_query_string(api: Api) -> None:
    status, _, body = await api.get("/api/leads?limit=0")
    assert status == 422 and body["detail"] == "the query string is not valid"
    assert body["errors"][0]["field"] == "limit"


async def test_a_query_parameter_given_twice_is_refused_not_guessed(api: Api) -> None:
    campaign_path = "/api/campaigns/00000000-0000-4000-8000-000000000000?limit=5&limit=6"
    for path in ("/api/leads?limit=&limit=", "/api/leads?status=new&status=won", campaign_path):
        status, _, body = await api.get(path)
        assert status == 422 and body["detail"] == "the query string is not valid", (path, body)
        assert body["errors"][0]["message"] == "given more than once"
