"""Wiring of the proposals service: proposals, their payments and contracts."""

from pathlib import Path

from services.proposals.handlers import register
from shared import lead_directory
from shared.contracts.proposals import EVENTS, SERVICE
from shared.service import Service
from shared.settings import ServiceSettings


class ProposalsSettings(ServiceSettings):
    pass


def build(settings: ProposalsSettings) -> Service:
    service = Service(SERVICE, settings, [lead_directory.MIGRATIONS, Path(__file__).parent / "migrations"])
    register(service, lead_directory.of(service))
    service.finish_routing()
    service.document_events(EVENTS)
    return service


SETTINGS = ProposalsSettings
