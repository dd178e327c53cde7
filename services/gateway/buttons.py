"""The buttons and their reads, one thin view each (the helpers are in views.py)."""
from aiohttp import web

from services.gateway.auth import issue
from services.gateway.errors import Problem, json_response
from services.gateway.keys import SETTINGS
from services.gateway.views import ask, parse, path_ids, read_json, send_command
from shared.contracts.bookings import (
    ConfirmAppointment,
    CreateAppointment,
    GetAppointment,
    LeadAppointments,
)
from shared.contracts.leads import (
    BulkUpdateLeadStatus,
    CreateLead,
    GetLead,
    LeadHistory,
    ListLeads,
    UpdateLeadStatus,
    statuses_reply,
)
from shared.contracts.sms import CreateTemplate, ListTemplates, SendSms, SmsHistory


# Leads ----------------------------------------------------------------------
async def create_lead(request: web.Request) -> web.Response:
    return await send_command(request, "leads.create", parse(CreateLead, await read_json(request)))


async def update_lead_status(request: web.Request) -> web.Response:
    data = await read_json(request)
    if "leadIds" in data and "leadId" in data:
        raise Problem(422, "Invalid request", "give either leadId (one lead) or leadIds (bulk), not both",
                      "/problems/validation", errors=[{"field": "leadIds", "message": "not with leadId"}])
    if "leadIds" in data:
        return await send_command(request, "leads.bulk_update_status", parse(BulkUpdateLeadStatus, data))
    return await send_command(request, "leads.update_status", parse(UpdateLeadStatus, data))


async def get_lead(request: web.Request) -> web.Response:
    return await ask(request, "leads", "get", path_ids(GetLead, leadId=request.match_info["lead_id"]))


async def list_leads(request: web.Request) -> web.Response:
    present = {k: v for k, v in request.query.items() if v != ""}  # ?status=&limit= : empty means absent
    return await ask(request, "leads", "list", parse(ListLeads, present, "the query string"))


async def lead_history(request: web.Request) -> web.Response:
    return await ask(request, "leads", "history", path_ids(LeadHistory, leadId=request.match_info["lead_id"]))


async def lead_statuses(request: web.Request) -> web.Response:
    """The statuses and their allowed moves, from the contract the leads service enforces."""
    return json_response(200, statuses_reply().model_dump(mode="json"))


# Bookings -------------------------------------------------------------------
async def create_appointment(request: web.Request) -> web.Response:
    return await send_command(request, "bookings.create", parse(CreateAppointment, await read_json(request)))


async def confirm_appointment(request: web.Request) -> web.Response:
    return await send_command(request, "bookings.confirm", parse(ConfirmAppointment, await read_json(request)))


async def get_appointment(request: web.Request) -> web.Response:
    return await ask(request, "bookings", "get", path_ids(GetAppointment, appointmentId=request.match_info["appointment_id"]))


async def lead_appointments(request: web.Request) -> web.Response:
    return await ask(request, "bookings", "of_lead", path_ids(LeadAppointments, leadId=request.match_info["lead_id"]))


# SMS ------------------------------------------------------------------------
async def send_sms(request: web.Request) -> web.Response:
    return await send_command(request, "sms.send", parse(SendSms, await read_json(request)))


async def sms_history(request: web.Request) -> web.Response:
    return await ask(request, "sms", "history", path_ids(SmsHistory, leadId=request.match_info["lead_id"]))


async def create_template(request: web.Request) -> web.Response:
    return await send_command(request, "sms.create_template", parse(CreateTemplate, await read_json(request)))


async def list_templates(request: web.Request) -> web.Response:
    return await ask(request, "sms", "templates", ListTemplates())


# Development sign-in ----------------------------------------------------------
DEV_TOKEN_TTL_SECONDS = 12 * 3600


def _dev_login_on(request: web.Request) -> None:
    if not request.app[SETTINGS].dev_login:  # off: as if the route did not exist
        raise Problem(404, "Not found", f"there is nothing at {request.path}", "/problems/not-found")


async def dev_login(request: web.Request) -> web.Response:
    """Whether "sign in as demo agent" is offered, and as whom."""
    _dev_login_on(request)
    settings = request.app[SETTINGS]
    return json_response(200, {"org": settings.dev_login_org, "user": settings.dev_login_user})


async def dev_token(request: web.Request) -> web.Response:
    _dev_login_on(request)
    settings = request.app[SETTINGS]
    token = issue(settings.jwt_secret, settings.dev_login_org, settings.dev_login_user, DEV_TOKEN_TTL_SECONDS)
    return json_response(200, {"token": token, "org": settings.dev_login_org, "user": settings.dev_login_user,
                               "expires_in": DEV_TOKEN_TTL_SECONDS})
