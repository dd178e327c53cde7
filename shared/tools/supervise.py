"""Run the processes of the Procfile under supervisord: `python -m shared.tools.supervise [Procfile]`.

Why supervisor (PyPI) and not honcho, which `make run` used before: honcho ends every process when
one exits, so one crashed service took the whole stack down. supervisord restarts a process that
died (and backs off while one keeps failing at start), logs each exit and restart, and stops the
processes in order on Ctrl-C or SIGTERM: the gateway first (it stops taking requests and drains its
websockets), then the services (they finish or give back their in-flight messages), the Twilio
sandbox last. Each child runs in its own process group, so a Ctrl-C reaches only supervisord,
which then stops them in that order, each given its time to drain before a SIGKILL.

The Procfile stays the one list of processes (also for honcho users and the container image).
`SCALE=n` runs n instances of each (gateways on consecutive ports from GATEWAY_PORT; one sandbox).
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Started in this order, stopped in the reverse one.
PRIORITY = {
    "twilio_sandbox": 10,
    "leads": 20,
    "bookings": 30,
    "sms": 30,
    "proposals": 30,
    "documents": 30,
    "gateway": 90,
}
STOP_WAIT_SECONDS = {"gateway": 20}  # its shutdown_timeout is 10 s; the services' graceful_timeout 30 s
DEFAULT_STOP_WAIT = 40


def programs(procfile: Path) -> dict[str, str]:
    entries = {}
    for line in procfile.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def scaled(
    entries: dict[str, str], scale: int, gateway_port: int, metrics_port: int = 0
) -> dict[str, tuple[str, dict[str, str]]]:
    """`scale` instances of every process but the sandbox; gateway i listens on gateway_port + i (its
    /metrics there too); each service instance gets its own METRICS_PORT from `metrics_port` (0: none)."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for name, command in entries.items():
        for i in range(1 if name == "twilio_sandbox" else scale):
            env = {"GATEWAY_PORT": str(gateway_port + i)} if name == "gateway" else {}
            if metrics_port and name not in ("gateway", "twilio_sandbox"):
                env["METRICS_PORT"] = str(metrics_port + sum(1 for _, e in out.values() if "METRICS_PORT" in e))
            out[name if i == 0 else f"{name}_{i + 1}"] = (command, env)
    return out


def config(entries: dict[str, str] | dict[str, tuple[str, dict[str, str]]], workdir: Path) -> str:
    # In the foreground supervisord writes its own log to stdout as well: no second copy in a file.
    lines = [
        "[supervisord]",
        "nodaemon=true",
        "logfile=/dev/null",
        "logfile_maxbytes=0",
        "loglevel=info",
        f"pidfile={workdir / 'supervisord.pid'}",
        "",
        "[unix_http_server]",
        f"file={workdir / 'supervisor.sock'}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{workdir / 'supervisor.sock'}",
        "",
    ]
    for name, entry in entries.items():
        command, env = entry if isinstance(entry, tuple) else (entry, {})
        base = name.rsplit("_", 1)[0] if name.rsplit("_", 1)[-1].isdigit() else name
        lines += [
            f"[program:{name}]",
            f"command={command}",
            f"directory={ROOT}",
            f"priority={PRIORITY.get(base, 50)}",
            "autorestart=true",
            # A start counts once it has run 3 s; until then failures back off (1 s, 2 s, ...) up to 10 times.
            "startsecs=3",
            "startretries=10",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT_SECONDS.get(base, DEFAULT_STOP_WAIT)}",
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
            "redirect_stderr=true",
            *([f"environment={_environment(env)}"] if env else []),
            "",
        ]
    return "\n".join(lines)


def _environment(env: dict[str, str]) -> str:
    return ",".join(f'{key}="{value}"' for key, value in env.items())


def main() -> None:
    procfile = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "Procfile"
    workdir = Path(tempfile.mkdtemp(prefix="crm-supervise-"))
    path = workdir / "supervisord.conf"
    scale = int(os.environ.get("SCALE") or 1)
    port = int(os.environ.get("GATEWAY_PORT") or 8080)
    metrics = int(os.environ.get("METRICS_BASE_PORT") or 9100)
    programs_ = scaled(programs(procfile), scale, port, metrics)
    path.write_text(config(programs_, workdir))
    print(
        "metrics: "
        + ", ".join(f"{name} :{env['METRICS_PORT']}" for name, (_, env) in programs_.items() if "METRICS_PORT" in env)
        + "; gateways on their own port (/metrics)",
        flush=True,
    )
    if scale > 1:
        print(
            f"SCALE={scale}: gateways on ports {', '.join(str(port + i) for i in range(scale))}; "
            f"{scale} instances of each service",
            flush=True,
        )
    print(f"supervisord config: {path} (status: .venv/bin/supervisorctl -c {path} status)", flush=True)
    supervisord = Path(sys.executable).with_name("supervisord")
    os.execv(supervisord, [str(supervisord), "-c", str(path)])


if __name__ == "__main__":
    main()
