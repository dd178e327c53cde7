"""Wiring of the bookings service."""

from pathlib import Path

from services.bookings.demo import book_demo
from services.bookings.handlers import BookingHandlers, register
from shared import lead_directory
from shared.contracts.bookings import EVENTS, SERVICE
from shared.service import Service
from shared.settings import ServiceSettings


class BookingsSettings(ServiceSettings):
    # `make run` sets it: book demo appointments for this organisation's first leads.
    bookings_demo_org: str = ""


def build(settings: BookingsSettings) -> Service:
    service = Service(SERVICE, settings, [lead_directory.MIGRATIONS, Path(__file__).parent / "migrations"])
    handlers = BookingHandlers(lead_directory.of(service))
    register(service, handlers)
    if settings.bookings_demo_org:
        service.in_background(
            lambda: book_demo(service.broker, lambda: service.pool, settings.bookings_demo_org, service.own_user)
        )
    service.finish_routing()
    service.document_events(EVENTS)
    return service


SETTINGS = BookingsSettings
