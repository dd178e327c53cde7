"""Run the processes of the Procfile under supervisord: `python -m shared.tools.supervise [Procfile]`.

Why supervisor (PyPI) and not honcho, which `make run` used before: honcho ends every process when
one exits, so one crashed service took the whole stack down. supervisord restarts a process that
died (and backs off while one keeps failing at start), logs each exit and restart, and stops the
processes in order on Ctrl-C or SIGTERM: the gateway first (it stops taking requests and drains its
websockets), then the services (they finish or give back their in-flight messages), the Twilio
sandbox last. Each child runs in its own process group, so a Ctrl-C reaches only supervisord,
which then stops them in that order, each given its time to drain before a SIGKILL.

The Procfile stays the one list of processes (also for honcho users and the container image).
"""
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Started in this order, stopped in the reverse one.
PRIORITY = {"twilio_sandbox": 10, "leads": 20, "bookings": 30, "sms": 30, "gateway": 90}
STOP_WAIT_SECONDS = {"gateway": 20}  # its shutdown_timeout is 10 s; the services' graceful_timeout 30 s
DEFAULT_STOP_WAIT = 40


def programs(procfile: Path) -> dict[str, str]:
    entries = {}
    for line in procfile.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def config(entries: dict[str, str], workdir: Path) -> str:
    # In the foreground supervisord writes its own log to stdout as well: no second copy in a file.
    lines = ["[supervisord]", "nodaemon=true", "logfile=/dev/null", "logfile_maxbytes=0", "loglevel=info",
             f"pidfile={workdir / 'supervisord.pid'}", "",
             "[unix_http_server]", f"file={workdir / 'supervisor.sock'}", "",
             "[rpcinterface:supervisor]",
             "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
             "[supervisorctl]", f"serverurl=unix://{workdir / 'supervisor.sock'}", ""]
    for name, command in entries.items():
        lines += [f"[program:{name}]", f"command={command}", f"directory={ROOT}",
                  f"priority={PRIORITY.get(name, 50)}", "autorestart=true",
                  # A start counts once it has run 3 s; until then failures back off (1 s, 2 s, ...) up to 10 times.
                  "startsecs=3", "startretries=10", "stopsignal=TERM",
                  f"stopwaitsecs={STOP_WAIT_SECONDS.get(name, DEFAULT_STOP_WAIT)}",
                  "stdout_logfile=/dev/stdout", "stdout_logfile_maxbytes=0", "redirect_stderr=true", ""]
    return "\n".join(lines)


def main() -> None:
    procfile = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "Procfile"
    workdir = Path(tempfile.mkdtemp(prefix="crm-supervise-"))
    path = workdir / "supervisord.conf"
    path.write_text(config(programs(procfile), workdir))
    print(f"supervisord config: {path} (status: .venv/bin/supervisorctl -c {path} status)", flush=True)
    supervisord = Path(sys.executable).with_name("supervisord")
    os.execv(supervisord, [str(supervisord), "-c", str(path)])


if __name__ == "__main__":
    main()
