"""A three-node RabbitMQ cluster on this machine, from the installed `rabbitmq-server`: for `make cluster`, the
cluster tests (tests/e2e/test_cluster.py), `make chaos CLUSTER=3` and `make bench BENCH_ARGS=--cluster`.

    this machine (root namespace)                 crm-<run>-1   10.77.X.1   rabbit@10.77.X.1   var/cluster/<run>/n1
    HAProxy 127.0.0.1:<port> ── bridge crmbr<run> ─ crm-<run>-2   10.77.X.2   rabbit@10.77.X.2   var/cluster/<run>/n2
      (checks each node's AMQP greeting)        └ crm-<run>-3   10.77.X.3   rabbit@10.77.X.3   var/cluster/<run>/n3

- Each node runs in a network namespace of its own (`ip netns`, a veth into one bridge), with its own address, its
  own epmd, its own data directory, and the run's Erlang cookie. Node names are long names on the address
  (rabbit@10.77.X.i): nothing is added to /etc/hosts. The nodes form one cluster by classic-config peer discovery:
  the first node starts alone, the others find it and join.
- Clients connect to HAProxy (Debian's package), which checks that each node answers the AMQP protocol header
  every second and closes the sessions of a node it marks down: a client's reconnect then reaches a live node.
  That is how the services reach a cluster (README, "A RabbitMQ cluster"): one AMQP_URL, nothing in the code.
- Faults: `kill` (SIGKILL of the node's Erlang VM; its epmd lives on, like a host whose broker crashed),
  `start_node`, `stop_node` (graceful), `partition` (iptables in the node's namespace drops its traffic with the
  other nodes, not with clients) and `heal`. `cluster_partition_handling = pause_minority`: the cut-off node pauses
  and closes its clients' connections; `net_ticktime` is 10 s, so a partition is seen within ~10 s.
- Cleanup: `stop` kills every process of the namespaces, removes them, the bridge and the data (the logs stay in
  var/cluster/last). A watchdog process tears the run down if its owner dies without `stop` (SIGKILL, a CI
  timeout), and every `start` first sweeps runs whose owner is gone: no namespace, node or process is left behind.

Where namespaces cannot be made (not root, or a container that forbids them), the same three nodes run on this
machine's loopback, each on ports of its own (AMQP and Erlang distribution), named crm<run>n<i>@localhost, sharing
the machine's epmd; everything above works but `partition` (no namespace to cut off: `can_partition` is False).
`Cluster(isolated=False)` asks for it where namespaces could be made (tests/integration/test_cluster_loopback.py).
"""

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tests.support.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "var" / "cluster"
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
PREFIX = "crm-"  # namespaces: crm-<run>-<i>; the bridge crmbr<run>; veths crmv<run><i>
AMQP_PORT = 5672
STARTUP_SECONDS = 120.0
NET_TICKTIME = 10  # s: how soon a node sees another one gone silent (Erlang's default, 60, is long for tests)
# A delay queue dead-letters a retry at least once: it keeps the message until the work queue confirmed it, and
# sends it again when no confirm came within this (RabbitMQ 3.10's default: 180 s). A confirm lost in a leader
# change (a node killed, a partition) left a retry waiting that long (make chaos CLUSTER=3); a copy sent twice is
# one the inbox has seen. README, "On a RabbitMQ cluster".
DLX_CONFIRM_TIMEOUT_MS = 15_000
GREETING = "414d515000000901"  # "AMQP" 0 0 9 1: HAProxy's check expects the server's Connection.Start back


class ClusterError(RuntimeError):
    pass


def available() -> str | None:
    """Why no cluster can run here, in either mode (None: one can)."""
    if shutil.which("haproxy") is None:
        return "haproxy is not installed (make cluster installs it from Debian's packages)"
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        return "rabbitmq-server is not installed"
    return None


def isolation_available() -> str | None:
    """Why the nodes cannot have network namespaces of their own here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make cluster installs it from Debian's packages)"
    probe = f"{PREFIX}probe-{os.getpid()}"
    made = run("ip", "netns", "add", probe, check=False)
    run("ip", "netns", "del", probe, check=False)
    if made.returncode != 0:
        return f"network namespaces cannot be made here: {made.stderr.strip()}"
    return None


def run(*command: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise ClusterError(f"{' '.join(command)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


@dataclass
class Node:
    index: int
    host: str
    namespace: str | None  # None: on this machine's loopback, on ports of its own
    veth: str
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    amqp_port: int = AMQP_PORT
    dist_port: int | None = None  # (loopback: the Erlang distribution's port; in a namespace, epmd's choice)
    node_name: str = ""

    @property
    def name(self) -> str:
        return self.node_name or f"rabbit@{self.host}"


@dataclass
class Cluster:
    size: int = 3
    port: int = field(default_factory=free_port)  # HAProxy's, on 127.0.0.1
    run_id: str = field(default_factory=lambda: secrets.token_hex(2))
    nodes: list[Node] = field(default_factory=list)
    _haproxy: subprocess.Popen[bytes] | None = None
    _watchdog: subprocess.Popen[bytes] | None = None
    _cli_hosts: list[str] = field(default_factory=list)
    _subnet: str = ""  # 10.77.X: the nodes are .1 to .3, the bridge (this machine) .254
    isolated: bool | None = None  # nodes in namespaces of their own; None: where they can be made

    @property
    def can_partition(self) -> bool:
        return bool(self.isolated)

    @property
    def directory(self) -> Path:
        return BASE / self.run_id

    @property
    def bridge(self) -> str:
        return f"crmbr{self.run_id}"

    def url(self, vhost: str = "/") -> str:
        """An AMQP URL through HAProxy (what the services are given)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{_path(vhost)}"

    def node_url(self, node: Node, vhost: str = "/") -> str:
        return f"amqp://guest:guest@{node.host}:{node.amqp_port}/{_path(vhost)}"

    # --- start and stop ---

    def start(self) -> "Cluster":
        why = available()
        if why is not None:
            raise ClusterError(f"no cluster here: {why}")
        if self.isolated is None:
            self.isolated = isolation_available() is None
        sweep()
        self.directory.mkdir(parents=True)
        (self.directory / "owner").write_text(str(os.getpid()))
        self._watchdog = subprocess.Popen(
            [sys.executable, "-m", "tests.support.cluster", "--watch", str(os.getpid()), self.run_id],
            cwd=ROOT,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._network() if self.isolated else self._loopback()
            self._write_configs()
            first, *others = self.nodes
            self.start_node(first)
            self.wait_up(first)
            if self.isolated:
                self._learn_cli_host(first)
            for node in others:
                self.start_node(node)
            for node in others:
                self.wait_up(node)
            self.wait_clustered()
            self._start_haproxy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        teardown(self.run_id)
        if self._haproxy is not None:
            with suppress(ProcessLookupError):
                os.killpg(self._haproxy.pid, signal.SIGKILL)
            self._haproxy.wait()
        for node in self.nodes:
            if node.process is not None:
                node.process.wait()
        if self._watchdog is not None:
            with suppress(ProcessLookupError):
                os.killpg(self._watchdog.pid, signal.SIGKILL)
            self._watchdog.wait()

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def _admin(self) -> str:
        """The namespace the CLI tools run in (address .250, its own epmd): some commands (list_queues) have every
        node answer the tool's node straight, which they find by its host name and that host's epmd."""
        return f"{PREFIX}{self.run_id}-0"

    @property
    def _admin_tuple(self) -> str:
        return "{" + self._subnet.replace(".", ",") + ",250}"

    def _network(self) -> None:
        self._subnet = subnet = _free_subnet()
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{subnet}.254/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        _namespace(self._admin, f"crmv{self.run_id}0", f"{subnet}.250", self.bridge)
        for i in range(1, self.size + 1):
            namespace, veth = f"{PREFIX}{self.run_id}-{i}", f"crmv{self.run_id}{i}"
            node = Node(i, f"{subnet}.{i}", namespace, veth, self.directory / f"n{i}")
            _namespace(namespace, veth, node.host, self.bridge)
            self.nodes.append(node)

    def _loopback(self) -> None:
        if not answers("127.0.0.1", 4369):
            (self.directory / "epmd-ours").write_text("")  # the nodes start it: stopped at teardown
        for i in range(1, self.size + 1):
            name = f"crm{self.run_id}n{i}@localhost"
            node = Node(i, "127.0.0.1", None, "", self.directory / f"n{i}", None, free_port(), free_port(), name)
            self.nodes.append(node)

    def _write_configs(self) -> None:
        cookie = secrets.token_hex(16)
        home = self.directory / "home"
        home.mkdir()
        (home / ".erlang.cookie").write_text(cookie)
        (home / ".erlang.cookie").chmod(0o400)
        (self.directory / "env.conf").write_text("")  # (not /etc/rabbitmq/rabbitmq-env.conf: the local broker's)
        peers = "\n".join(f"cluster_formation.classic_config.nodes.{n.index} = {n.name}" for n in self.nodes)
        for node in self.nodes:
            for sub in ("mnesia", "log"):
                (node.directory / sub).mkdir(parents=True)
            (node.directory / "rabbitmq.conf").write_text(
                f"listeners.tcp.default = {node.amqp_port}\n"
                "loopback_users = none\n"  # guest from HAProxy's address: a test cluster only
                "cluster_partition_handling = pause_minority\n"
                "cluster_formation.peer_discovery_backend = classic_config\n"
                f"{peers}\n"
                "log.file.level = info\n"
                "log.connection.level = error\n"  # (HAProxy's check opens and drops a connection every second)
            )
            (node.directory / "advanced.config").write_text(
                f"[{{kernel, [{{net_ticktime, {NET_TICKTIME}}}]}},\n"
                f" {{rabbit, [{{dead_letter_worker_publisher_confirm_timeout, {DLX_CONFIRM_TIMEOUT_MS}}}]}}].\n"
            )
            (node.directory / "enabled_plugins").write_text("[].\n")
        if self.isolated:
            host = socket.gethostname()
            self._cli_hosts = [host, f"{host}.localdomain", socket.getfqdn()]
            self._write_inetrc(self._cli_hosts)

    def _write_inetrc(self, cli_hosts: list[str]) -> None:
        """The nodes' own hosts table: the CLI tools' node is named on this machine's host name, which the nodes
        must find at the admin namespace's address (nothing is added to /etc/hosts)."""
        names = ", ".join(f'"{h}"' for h in dict.fromkeys(cli_hosts))
        (self.directory / "inetrc").write_text(
            f"{{host, {self._admin_tuple}, [{names}]}}.\n{{lookup, [file, native]}}.\n"
        )

    def _learn_cli_host(self, node: Node) -> None:
        """The host name the CLI tools give themselves (asked of a node they talked to); added where missing."""
        hidden = self.ctl(node, "rabbitmqctl", "eval", "nodes(hidden).")
        hosts = [name.split("@", 1)[1] for name in hidden.strip(" \n[]").replace("'", "").split(",") if "@" in name]
        if hosts and hosts[0] not in self._cli_hosts:
            self._cli_hosts.append(hosts[0])
            self._write_inetrc(self._cli_hosts)
            for started in self.nodes:
                if self.running(started):
                    self.ctl(started, "rabbitmqctl", "eval", f'inet_db:add_host({self._admin_tuple}, ["{hosts[0]}"]).')

    def _env(self, node: Node | None = None) -> dict[str, str]:
        env = {
            "PATH": f"{RABBITMQ_BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.directory / "home"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "RABBITMQ_CONF_ENV_FILE": str(self.directory / "env.conf"),
            "RABBITMQ_USE_LONGNAME": "true" if self.isolated else "false",
        }
        if node is not None:
            env |= {
                "RABBITMQ_NODENAME": node.name,
                "RABBITMQ_MNESIA_BASE": str(node.directory / "mnesia"),
                "RABBITMQ_LOG_BASE": str(node.directory / "log"),
                "RABBITMQ_CONFIG_FILE": str(node.directory / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.directory / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.directory / "enabled_plugins"),
                "RABBITMQ_PID_FILE": str(node.directory / "pid"),
                # One scheduler each, no busy waiting: three nodes and the system share two cores.
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none",
                **({"ERL_INETRC": str(self.directory / "inetrc")} if self.isolated else {}),
                **({"RABBITMQ_DIST_PORT": str(node.dist_port)} if node.dist_port else {}),
            }
        return env

    def _start_haproxy(self) -> None:
        servers = "\n".join(f"  server n{n.index} {n.host}:{n.amqp_port} check" for n in self.nodes)
        config = self.directory / "haproxy.cfg"
        config.write_text(
            "global\n  maxconn 4096\n"
            "defaults\n  mode tcp\n  timeout connect 3s\n  timeout client 3h\n  timeout server 3h\n"
            "  timeout check 2s\n"
            f"frontend amqp\n  bind 127.0.0.1:{self.port}\n  default_backend nodes\n"
            "backend nodes\n  balance roundrobin\n  option tcp-check\n  tcp-check connect\n"
            f"  tcp-check send-binary {GREETING}\n  tcp-check expect binary 0100\n"
            "  default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions\n"
            f"{servers}\n"
        )
        with (self.directory / "haproxy.log").open("ab") as log:  # (the child keeps its own descriptor)
            self._haproxy = subprocess.Popen(
                ["haproxy", "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        (self.directory / "haproxy.pid").write_text(str(self._haproxy.pid))
        deadline = time.monotonic() + 10
        while not answers("127.0.0.1", self.port):
            if self._haproxy.poll() is not None or time.monotonic() > deadline:
                raise ClusterError(f"HAProxy did not start: {(self.directory / 'haproxy.log').read_text()[-2000:]}")
            time.sleep(0.1)

    # --- nodes ---

    def start_node(self, node: Node) -> None:
        with (node.directory / "log" / "stdout.log").open("ab") as log:
            inside = ["ip", "netns", "exec", node.namespace] if node.namespace else []
            node.process = subprocess.Popen(
                [*inside, str(RABBITMQ_BIN / "rabbitmq-server")],
                env=self._env(node),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (node.directory / "pgid").write_text(str(node.process.pid))  # (its own group: teardown kills it whole)

    def wait_up(self, node: Node, timeout: float = STARTUP_SECONDS) -> None:
        """Until the node takes AMQP connections (the listener opens at the end of its boot)."""
        deadline = time.monotonic() + timeout
        while not self.listening(node):
            if node.process is not None and node.process.poll() is not None:
                raise ClusterError(f"{node.name} stopped while starting: {self.log_tail(node)}")
            if time.monotonic() > deadline:
                raise ClusterError(f"{node.name} did not start within {timeout:.0f} s: {self.log_tail(node)}")
            time.sleep(0.2)

    def kill(self, node: Node) -> None:
        """SIGKILL of the node's Erlang VM (what a crashed host's broker looks like to the others)."""
        for pid in self._beams(node):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if node.process is not None:
            node.process.wait(timeout=30)
            node.process = None

    def stop_node(self, node: Node) -> None:
        """A graceful stop (a rolling restart's step), once the quorum queues can lose this node's member."""
        self.ctl(node, "rabbitmq-upgrade", "await_online_quorum_plus_one", "-t", "120", timeout=150)
        self.ctl(node, "rabbitmqctl", "stop", timeout=120)
        deadline = time.monotonic() + 60
        while self.running(node) and time.monotonic() < deadline:
            time.sleep(0.2)
        if node.process is not None:
            node.process.wait(timeout=10)
            node.process = None

    def restart_node(self, node: Node) -> None:
        """Start a stopped or killed node again and wait until it is back in the cluster."""
        self.start_node(node)
        self.wait_up(node)
        self.wait_clustered()

    def partition(self, node: Node) -> None:
        """Cut `node` off from the other nodes (clients still reach it until it pauses itself)."""
        if not node.namespace:
            raise ClusterError("a partition needs the nodes in network namespaces (this cluster is on loopback)")
        for other in self.nodes:
            if other is not node:
                run("ip", "netns", "exec", node.namespace, "iptables", "-I", "INPUT", "-s", other.host, "-j", "DROP")
                run("ip", "netns", "exec", node.namespace, "iptables", "-I", "OUTPUT", "-d", other.host, "-j", "DROP")

    def heal(self, node: Node) -> None:
        if node.namespace:
            run("ip", "netns", "exec", node.namespace, "iptables", "-F")

    def listening(self, node: Node) -> bool:
        """Whether the node takes AMQP connections (it opens its listener at the end of its boot, and closes it
        when it pauses itself)."""
        return answers(node.host, node.amqp_port)

    def running(self, node: Node) -> bool:
        """Whether the node's Erlang VM runs (not whether it takes connections: see `wait_up`)."""
        return bool(self._beams(node))

    def _beams(self, node: Node) -> list[int]:
        """The node's Erlang VM (by its namespace, or on loopback by the pid file it writes)."""
        if node.namespace:
            return [pid for pid in _pids(node.namespace) if _comm(pid) == "beam.smp"]
        with suppress(OSError, ValueError):
            pid = int((node.directory / "pid").read_text())
            if _comm(pid) == "beam.smp":
                return [pid]
        return []

    # --- asking the cluster ---

    def ctl(self, node: Node, tool: str, *args: str, timeout: float = 60.0) -> str:
        """A RabbitMQ CLI tool (rabbitmqctl, rabbitmq-queues, ...) against `node`; its output."""
        where = ["ip", "netns", "exec", self._admin] if self.isolated else []
        names = ["--longnames"] if self.isolated else []
        done = subprocess.run(
            [*where, str(RABBITMQ_BIN / tool), "-n", node.name, *names, "-q", *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise ClusterError(f"{tool} {' '.join(args)} on {node.name}: {(done.stderr or done.stdout).strip()[-500:]}")
        return done.stdout

    def any_running(self) -> Node:
        for node in self.nodes:
            if self.running(node) and self.listening(node):
                return node
        raise ClusterError("no node of the cluster is running")

    def running_nodes(self, node: Node | None = None) -> set[str]:
        status = json.loads(
            self.ctl(node or self.any_running(), "rabbitmqctl", "cluster_status", "--formatter", "json")
        )
        return set(status.get("running_nodes", []))

    def wait_clustered(self, timeout: float = STARTUP_SECONDS) -> None:
        """Until every node runs in one cluster."""
        wanted = {n.name for n in self.nodes}
        deadline = time.monotonic() + timeout
        while True:
            with suppress(ClusterError, subprocess.TimeoutExpired):
                if all(self.running_nodes(n) == wanted for n in self.nodes):
                    return
            if time.monotonic() > deadline:
                raise ClusterError(f"the nodes did not form one cluster within {timeout:.0f} s")
            time.sleep(1)

    def queues(self, vhost: str) -> list[dict]:
        """Each queue of `vhost` with its type, leader and members (quorum queues and streams)."""
        output = self.ctl(
            self.any_running(), "rabbitmqctl", "list_queues", "-p", vhost, "name", "type", "leader", "members",
            "--formatter", "json",
        )  # fmt: skip
        return list(json.loads(output))

    def node_named(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def leader(self, vhost: str, queue: str) -> Node:
        found = next(q for q in self.queues(vhost) if q["name"] == queue)
        return self.node_named(str(found["leader"]))

    def add_vhost(self, vhost: str) -> None:
        node = self.any_running()
        self.ctl(node, "rabbitmqctl", "add_vhost", vhost)
        self.ctl(node, "rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")

    def delete_vhost(self, vhost: str) -> None:
        self.ctl(self.any_running(), "rabbitmqctl", "delete_vhost", vhost)

    def log_tail(self, node: Node, size: int = 2000) -> str:
        found = sorted((node.directory / "log").glob("*.log"), key=lambda p: p.stat().st_mtime)
        return "".join(p.read_text(errors="replace")[-size:] for p in found[-2:])


# --- the run's resources, found by name (also those of a run whose owner died) ---


def _namespace(name: str, veth: str, address: str, bridge: str) -> None:
    """A network namespace with `address` on its eth0, a veth into `bridge`."""
    run("ip", "netns", "add", name)
    run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
    run("ip", "link", "set", veth, "master", bridge, "up")
    run("ip", "-n", name, "addr", "add", f"{address}/24", "dev", "eth0")
    run("ip", "-n", name, "link", "set", "eth0", "up")
    run("ip", "-n", name, "link", "set", "lo", "up")


def _path(vhost: str) -> str:
    return "" if vhost == "/" else quote(vhost, safe="")


def answers(host: str, port: int) -> bool:
    """Whether something takes TCP connections at host:port (a paused node closes its listener)."""
    with suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _pids(namespace: str) -> list[int]:
    done = run("ip", "netns", "pids", namespace, check=False)
    return [int(p) for p in done.stdout.split()]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_subnet() -> str:
    taken = run("ip", "-o", "-4", "addr").stdout
    free = [x for x in range(1, 255) if f" 10.77.{x}." not in taken]
    if not free:
        raise ClusterError("no free 10.77.X.0/24 subnet")
    return f"10.77.{random.choice(free)}"


def _namespaces() -> list[str]:
    return [line.split()[0] for line in run("ip", "netns", "list").stdout.splitlines() if line.strip()]


def teardown(run_id: str) -> None:
    """Kill every process of the run's namespaces and its HAProxy; remove the namespaces, the bridge, the data."""
    directory = BASE / run_id
    ours = [ns for ns in _namespaces() if ns.startswith(f"{PREFIX}{run_id}-")]
    for _ in range(50):
        pids = [pid for ns in ours for pid in _pids(ns)]
        if not pids:
            break
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    for group in directory.glob("n*/pgid"):  # each node's wrapper, VM and helpers (a loopback node has no namespace)
        with suppress(OSError, ValueError):
            os.killpg(int(group.read_text()), signal.SIGKILL)
    with suppress(OSError, ValueError):
        pid = int((directory / "haproxy.pid").read_text())
        if "haproxy" in _comm(pid):
            os.kill(pid, signal.SIGKILL)
    if (directory / "epmd-ours").exists():  # started by a loopback run's first node, on a machine that had none
        run("epmd", "-kill", check=False)
    for ns in ours:
        run("ip", "netns", "del", ns, check=False)
    run("ip", "link", "del", f"crmbr{run_id}", check=False)
    if directory.exists():
        last = BASE / "last"
        shutil.rmtree(last, ignore_errors=True)
        for node_dir in directory.glob("n*"):
            shutil.rmtree(node_dir / "mnesia", ignore_errors=True)
        with suppress(OSError):
            directory.rename(last)
        shutil.rmtree(directory, ignore_errors=True)


def sweep() -> None:
    """Tear down every run whose owner is gone (a run killed before its `stop`)."""
    runs = {ns[len(PREFIX) :].rsplit("-", 1)[0] for ns in _namespaces() if ns.startswith(PREFIX)}
    if BASE.exists():
        runs |= {d.name for d in BASE.iterdir() if d.is_dir() and d.name != "last"}
    for run_id in runs:
        try:
            owner = int((BASE / run_id / "owner").read_text())
        except (OSError, ValueError):
            owner = None
        if owner is None or not alive(owner):
            teardown(run_id)


def watch(owner: int, run_id: str) -> None:
    """The watchdog: tear the run down once its owner is gone."""
    while alive(owner) and (BASE / run_id).exists():
        time.sleep(1)
    if (BASE / run_id).exists():
        teardown(run_id)


def main() -> None:
    parser = argparse.ArgumentParser(description="A three-node RabbitMQ cluster on this machine, until Ctrl-C.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("CLUSTER_PORT", "5673")))
    parser.add_argument("--watch", nargs=2, metavar=("OWNER", "RUN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.watch:
        return watch(int(args.watch[0]), args.watch[1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = time.monotonic()
    cluster = Cluster(port=args.port)
    print("starting three RabbitMQ nodes ...", flush=True)
    with cluster:
        print(f"cluster up in {time.monotonic() - started:.0f} s:", flush=True)
        for node in cluster.nodes:
            where = f"namespace {node.namespace}" if node.namespace else f"loopback port {node.amqp_port}"
            print(f"  {node.name}  {where}  data {node.directory.relative_to(ROOT)}")
        print(f"AMQP through HAProxy: {cluster.url()}")
        print(f"Run the system on it (another terminal): AMQP_URL={cluster.url()} make run")
        print("Ctrl-C stops the nodes and removes the namespaces and the data.", flush=True)
        with suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
