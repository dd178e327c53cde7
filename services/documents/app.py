"""Wiring of the documents service."""

from datetime import timedelta
from pathlib import Path

from pydantic import Field

from services.documents import collector
from services.documents.handlers import DocumentHandlers, register
from shared import lead_directory
from shared.blobs import BlobSettings, open_store
from shared.contracts.documents import EVENTS, SERVICE
from shared.service import Service
from shared.settings import ServiceSettings


class DocumentsSettings(ServiceSettings, BlobSettings):
    # A blob no document refers to is removed once it has not been put or touched for this long
    # (it covers an upload whose command is still on its way), looked for every interval.
    blob_grace_seconds: float = Field(3600, ge=0)
    blob_gc_interval_seconds: float = Field(600, gt=0)


def build(settings: DocumentsSettings) -> Service:
    service = Service(SERVICE, settings, [lead_directory.MIGRATIONS, Path(__file__).parent / "migrations"])
    blobs = open_store(settings)
    register(service, DocumentHandlers(lead_directory.of(service), blobs))
    # The first pass waits a grace period: after the service was down a while, the attach commands queued
    # meanwhile name blobs older than that, and they are attached first.
    in_use = collector.in_use_by(lambda: service.pool)
    grace = timedelta(seconds=settings.blob_grace_seconds)
    service.loop(
        "blob_collector",
        lambda: collector.collect_once(blobs, in_use, grace),
        settings.blob_gc_interval_seconds,
        first_after=settings.blob_grace_seconds,
    )
    service.on_close(blobs.close)
    service.finish_routing()
    service.document_events(EVENTS)
    return service


SETTINGS = DocumentsSettings
