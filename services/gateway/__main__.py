from aiohttp import web

from services.gateway.app import init_app
from services.gateway.settings import GatewaySettings
from shared import logging, settings

if __name__ == "__main__":
    config = settings.load(GatewaySettings)
    logging.configure(config.log_level, config.log_json)
    web.run_app(init_app(config), host=config.host, port=config.port, print=None, access_log=None, shutdown_timeout=10)
