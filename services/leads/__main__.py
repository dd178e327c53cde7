import asyncio

from services.leads.app import LeadsSettings, build
from shared import logging, settings

if __name__ == "__main__":
    config = settings.load(LeadsSettings)
    logging.configure(config.log_level, config.log_json)
    asyncio.run(build(config).app.run())
