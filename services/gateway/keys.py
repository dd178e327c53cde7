"""Typed application state."""
from aiohttp import web

from services.gateway.bus import Bus
from services.gateway.settings import GatewaySettings
from services.gateway.ws import Hub

SETTINGS = web.AppKey("settings", GatewaySettings)
BUS = web.AppKey("bus", Bus)
HUB = web.AppKey("hub", Hub)
SERVICES = web.AppKey("services", list[str])
