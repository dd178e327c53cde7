"""What the bench reads of a process from /proc (Linux), and the open-files limit it needs."""

import os
import resource
from typing import Any


def raise_fd_limit(subscribers: int) -> int:
    """Raise the soft RLIMIT_NOFILE for our sockets and, inherited by the stack started after this,
    the gateway's; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * subscribers + 1024
    if soft != resource.RLIM_INFINITY and soft < need:
        soft = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < subscribers + 256:
        raise RuntimeError(f"the open-files limit ({soft}, hard {hard}) is too low for {subscribers} websockets")
    return soft


def cpu_s(pid: int) -> float:
    """CPU time (user + system) the process used so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_use(pids: dict[str, int], before: dict[str, float], frames: int) -> dict[str, Any]:
    """CPU seconds each process used since `before`, and per delivered event frame (microseconds)."""
    used = {name: cpu_s(pid) - before[name] for name, pid in pids.items()}
    return {"cpu_s": used, "cpu_us_per_frame": {k: v / frames * 1e6 if frames else None for k, v in used.items()}}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def stack_rss_kib(pids: dict[str, int]) -> dict[str, int | None]:
    """VmRSS of each named process (None when it is gone)."""
    out: dict[str, int | None] = {}
    for name, pid in pids.items():
        try:
            out[name] = rss_kib(pid)
        except (OSError, StopIteration):
            out[name] = None
    return out
