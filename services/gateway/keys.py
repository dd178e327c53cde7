"""Typed application state."""

from aiohttp import web

from services.gateway.archive import Archive, Archiver
from services.gateway.auth import TokenRules
from services.gateway.bus import Bus
from services.gateway.readiness import Readiness
from services.gateway.settings import GatewaySettings
from services.gateway.ws import Hub
from shared.blobs import BlobStore

SETTINGS = web.AppKey("settings", GatewaySettings)
BUS = web.AppKey("bus", Bus)
HUB = web.AppKey("hub", Hub)
SERVICES = web.AppKey("services", list[str])
BLOBS = web.AppKey("blobs", BlobStore)
READINESS = web.AppKey("readiness", Readiness)
RULES = web.AppKey("token_rules", TokenRules)
ARCHIVE = web.AppKey("archive", Archive)
ARCHIVER = web.AppKey("archiver", Archiver)
