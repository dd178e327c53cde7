"""The fault suite, short: 40 s of every button under SIGKILLs of every service instance and both gateways,
a failing Twilio sandbox, duplicated deliveries and dropped websockets (`make chaos` adds a stopped
broker and a restarted database, which would disturb the rest of the suite's shared servers)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack import ROOT


@pytest.mark.timeout(600)
def test_every_press_takes_effect_once_under_kills_provider_failures_duplicates_and_drops(tmp_path: Path) -> None:
    report = tmp_path / "chaos-report.txt"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos",
            "--seconds",
            "40",
            "--no-broker-restart",
            "--no-db-restart",
            "--report",
            str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert report.exists(), run.stdout[-5000:] + run.stderr[-5000:]
    record = json.loads(report.with_suffix(".json").read_text())
    result, total = record["result"], record["result"]["total"]
    assert total.get("accepted", 0) > 100, report.read_text()
    assert (total.get("lost", 0), total.get("duplicated", 0), total.get("unexpected", 0)) == (0, 0, 0), (
        report.read_text()
    )
    assert not result["unexpected"], report.read_text()
    assert not any(result["in_flight"].values()), report.read_text()
    assert {"service SIGKILL", "gateway SIGKILL", "sandbox failing", "websocket dropped"} <= set(record["faults"])
    assert result["ok"] and run.returncode == 0, report.read_text()
