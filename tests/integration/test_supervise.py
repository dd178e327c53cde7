"""`make run`'s supervision (shared/tools/supervise.py): a process that dies is restarted, the
others keep running, and SIGTERM stops them all in order."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.buttons import SERVICES
from shared.tools.supervise import config, programs
from tests.support.stack import ROOT, Stack, eventually


def test_the_procfile_becomes_one_supervised_program_each_the_gateway_stopped_first(tmp_path: Path) -> None:
    entries = programs(ROOT / "Procfile")
    assert set(entries) == {"twilio_sandbox", *SERVICES, "gateway"}  # every service the gateway routes to
    text = config(entries, tmp_path)
    priorities = {name: int(text.split(f"[program:{name}]")[1].split("priority=")[1].split()[0]) for name in entries}
    assert priorities["gateway"] > max(priorities[s] for s in SERVICES) > priorities["twilio_sandbox"]
    assert text.count("autorestart=true") == len(entries)


@pytest.fixture
def supervised(stack: Stack, tmp_path: Path):  # type: ignore[no-untyped-def]
    procfile = tmp_path / "Procfile"
    procfile.write_text("bookings: python -m services.bookings\n")
    output = tmp_path / "supervised.log"
    env = {**stack.env(), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "METRICS_BASE_PORT": "0"}
    with output.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shared.tools.supervise", str(procfile)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield process, output
    if process.poll() is None:  # SIGTERM: supervisord stops its children first (a SIGKILL would orphan them)
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def spawned(output: Path) -> list[int]:
    """The pids supervisord says it started the service as."""
    return [
        int(line.rsplit(" ", 1)[1])
        for line in output.read_text(errors="replace").splitlines()
        if "spawned: 'bookings' with pid" in line
    ]


async def test_a_killed_service_is_restarted_and_sigterm_stops_everything(supervised) -> None:  # type: ignore[no-untyped-def]
    process, output = supervised
    await eventually(
        lambda: output.read_text(errors="replace").count('"service.started"') >= 1,
        30,
        what="the supervised service to start",
    )
    (first,) = spawned(output)
    os.kill(first, signal.SIGKILL)
    await eventually(
        lambda: "exited: bookings (terminated by SIGKILL; not expected)" in output.read_text(),
        15,
        what="supervisord to see the service die",
    )
    await eventually(
        lambda: output.read_text(errors="replace").count('"service.started"') >= 2,
        30,
        what="the service to be started again",
    )
    second = spawned(output)[1:]
    assert second and process.poll() is None  # restarted, and the supervisor still runs
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    text = output.read_text(errors="replace")
    assert "stopped: bookings (exit status 0)" in text and '"service.stopped"' in text
    with pytest.raises(ProcessLookupError):
        os.kill(second[-1], 0)  # nothing left behind


def test_scale_runs_n_of_each_service_and_gateways_on_consecutive_ports(tmp_path: Path) -> None:
    from shared.tools.supervise import scaled

    entries = scaled(programs(ROOT / "Procfile"), 3, 9000, 9100)
    assert [name for name in entries if name.startswith("leads")] == ["leads", "leads_2", "leads_3"]
    assert [env for name, (_, env) in entries.items() if name.startswith("gateway")] == [
        {"GATEWAY_PORT": "9000"},
        {"GATEWAY_PORT": "9001"},
        {"GATEWAY_PORT": "9002"},
    ]
    assert [name for name in entries if name.startswith("twilio_sandbox")] == ["twilio_sandbox"]
    metrics = [env["METRICS_PORT"] for _, env in entries.values() if "METRICS_PORT" in env]
    assert len(metrics) == len(set(metrics)) == 3 * len(SERVICES)  # one /metrics port per service instance
    assert 'environment=GATEWAY_PORT="9002"' in config(entries, tmp_path)
