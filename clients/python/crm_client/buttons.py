"""The buttons as requests: route and JSON body, in the gateway's field names.

Pure (no I/O): the client sends them, the offline queue stores them as they are.
"""
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class Press:
    operation: str  # the client method's name, shown in pending() and outcomes()
    path: str
    body: dict[str, Any]


def _without_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def create_lead(name: str, phone: str, email: str | None = None) -> Press:
    return Press("create_lead", "/api/leads", _without_none(name=name, phone=phone, email=email))


def update_lead_status(lead_id: str, status: str, expected_status: str | None = None) -> Press:
    return Press("update_lead_status", "/api/leads/update-status",
                 _without_none(leadId=lead_id, status=status, expectedStatus=expected_status))


def bulk_update_lead_status(lead_ids: list[str], status: str) -> Press:
    return Press("bulk_update_lead_status", "/api/leads/update-status", {"leadIds": list(lead_ids), "status": status})


def create_appointment(lead_id: str, starts_at: str | datetime, duration_minutes: int | None = None,
                       title: str | None = None) -> Press:
    if isinstance(starts_at, datetime):
        starts_at = starts_at.isoformat()  # the gateway wants a time zone: give an aware datetime
    return Press("create_appointment", "/api/appointments",
                 _without_none(leadId=lead_id, startsAt=starts_at, durationMinutes=duration_minutes, title=title))


def confirm_booking(appointment_id: str, confirmed_by: str | None = None, notes: str | None = None,
                    send_sms: bool = False) -> Press:
    return Press("confirm_booking", "/api/bookings/confirm",
                 _without_none(appointmentId=appointment_id, confirmedBy=confirmed_by, notes=notes, sendSms=send_sms))


def send_sms(lead_id: str, message: str | None = None, template_id: str | None = None) -> Press:
    if (message is None) == (template_id is None):
        raise ValueError("give a message or a template_id, not both")
    return Press("send_sms", "/api/leads/send-sms", _without_none(leadId=lead_id, message=message,
                                                                  templateId=template_id))


# Reads: never queued offline (there is nothing to replay), retried like the presses.
def lead_path(lead_id: str) -> str:
    return f"/api/leads/{quote(str(lead_id), safe='')}"


def sms_history_path(lead_id: str) -> str:
    return f"{lead_path(lead_id)}/sms-history"


def appointment_path(appointment_id: str) -> str:
    return f"/api/appointments/{quote(str(appointment_id), safe='')}"
