from aiohttp import web

from services.twilio_sandbox.app import SandboxSettings, init_app
from shared import logging, settings

if __name__ == "__main__":
    config = settings.load(SandboxSettings)
    logging.configure(config.log_level, config.log_json)
    logging.get("twilio_sandbox").info(
        "sandbox.starting",
        host=config.host,
        port=config.port,
        account_sid=config.account_sid,
        inbound_url=config.inbound_url,
    )
    web.run_app(init_app(config), host=config.host, port=config.port, print=None, access_log=None, shutdown_timeout=5)
