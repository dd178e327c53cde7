"""Wiring of the leads service."""

from pathlib import Path

from pydantic import Field

from services.leads.handlers import LeadHandlers, register
from shared.contracts.leads import EVENTS, SERVICE
from shared.service import Service
from shared.settings import ServiceSettings


class LeadsSettings(ServiceSettings):
    # Region used to read a phone number written without a country code.
    phone_default_region: str = Field("US", pattern=r"^[A-Z]{2}$")


def build(settings: LeadsSettings) -> Service:
    service = Service(SERVICE, settings, Path(__file__).parent / "migrations")
    register(service, LeadHandlers(settings.phone_default_region))
    service.finish_routing()
    service.document_events(EVENTS)
    return service


SETTINGS = LeadsSettings
