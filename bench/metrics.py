"""What the bench reads of the gateway's /metrics (Prometheus text): the archive's head and what resumes read.

Both are a gateway's with an archive of the log (services/gateway/archive.py); one without has neither,
and every figure taken from them is None.
"""

import aiohttp

ARCHIVE_GAUGE = "crm_event_archive_position"  # the last log position the archive holds
READ_COUNTER = "crm_replay_records_total"  # records resumes read, by source (archive, log, probe)


async def scrape(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """The gateway's /metrics: each sample (its name and labels, as written) and its value."""
    async with http.get(f"{url}/metrics") as response:
        return parse(await response.text())


def parse(text: str) -> dict[str, float]:
    samples = (line.rpartition(" ") for line in text.splitlines() if line and not line.startswith("#"))
    return {sample: float(value) for sample, _, value in samples}


def read_by_source(before: dict[str, float], after: dict[str, float]) -> dict[str, float] | None:
    """What READ_COUNTER grew by, by its one label's value (`{source="log"}`: "log"): the records a resume
    read, where the gateway counts them; None where it does not."""
    grown = {k: v - before.get(k, 0.0) for k, v in after.items() if k.startswith(READ_COUNTER + "{")}
    return {k.partition('"')[2].rstrip('"}'): v for k, v in grown.items()} or None
