from pathlib import Path

from aiohttp import web

from services.gateway import buttons, openapi, views, webhooks
from services.gateway.keys import HUB

STATIC = Path(__file__).parent / "static"


async def websocket(request: web.Request) -> web.WebSocketResponse:
    return await request.app[HUB].handle(request)


async def console(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def service_worker(request: web.Request) -> web.FileResponse:
    """At the root, so that its scope is the whole console (it keeps the page's files for offline use)."""
    return web.FileResponse(STATIC / "sw.js", headers={"Content-Type": "text/javascript", "Cache-Control": "no-cache"})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/readyz", views.readyz)
    app.router.add_get("/api/openapi.json", openapi.serve)
    app.router.add_post("/api/leads", buttons.create_lead)
    app.router.add_get("/api/leads", buttons.list_leads)
    app.router.add_post("/api/leads/update-status", buttons.update_lead_status)
    app.router.add_get("/api/leads/statuses", buttons.lead_statuses)  # before {lead_id}: routes match in order
    # Not the buttons' own paths: a GET /api/leads/update-status is a 405 with its Allow, not a lead "update-status".
    app.router.add_get("/api/leads/{lead_id:(?!update-status$|send-sms$)[^/]+}", buttons.get_lead)
    app.router.add_get("/api/leads/{lead_id}/history", buttons.lead_history)
    app.router.add_get("/api/leads/{lead_id}/appointments", buttons.lead_appointments)
    app.router.add_post("/api/appointments", buttons.create_appointment)
    app.router.add_get("/api/appointments/{appointment_id}", buttons.get_appointment)
    app.router.add_post("/api/bookings/confirm", buttons.confirm_appointment)
    app.router.add_post("/api/leads/send-sms", buttons.send_sms)
    app.router.add_get("/api/leads/{lead_id}/sms-history", buttons.sms_history)
    app.router.add_post("/api/sms/templates", buttons.create_template)
    app.router.add_get("/api/sms/templates", buttons.list_templates)
    app.router.add_post("/webhooks/twilio/status", webhooks.twilio_status)
    app.router.add_post("/webhooks/twilio/inbound", webhooks.twilio_inbound)
    app.router.add_get("/api/commands/{service}/{command_id}", views.command_status)
    app.router.add_get("/ws", websocket)
    # Outside /api on purpose: public (no token yet), and 404 unless DEV_LOGIN is on.
    app.router.add_get("/dev/login", buttons.dev_login)
    app.router.add_post("/dev/token", buttons.dev_token)
    app.router.add_get("/", console)
    app.router.add_get("/sw.js", service_worker)
    app.router.add_static("/static", STATIC)
