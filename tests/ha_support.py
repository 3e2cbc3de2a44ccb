"""Real Redis topologies for the scale proofs: a Sentinel group and a three-primary Redis Cluster.

Every process is a ``redis-server`` on a loopback port reserved for this test process
(``port_support.reserve_port``) with its own directory under the test's temp dir, started and stopped
by the test. The Sentinel group (one primary, one replica, three sentinels; AOF on, no RDB) has tight
timings (``down-after-milliseconds`` 1000, ``failover-timeout`` 4000) so a failover takes a few seconds.
The cluster (``RedisClusterGroup``) is three primaries, no replicas, nothing on disk, each node's
cluster bus on a reserved port of its own (``--cluster-port``), made with ``redis-cli --cluster create``.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import redis as redis_lib
from port_support import release_port, reserve_port

MASTER = "sharer-ha"


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports reserved for this process (``port_support.reserve_port``): outside the ephemeral
    range and locked against other test processes, so a port stays ours while its server is down too."""
    return [reserve_port() for _ in range(n)]


def free_port() -> int:
    return reserve_port()


def _wait(check, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except redis_lib.RedisError:
            value = None
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


class PortTaken(RuntimeError):
    """redis-server could not bind its port (or its cluster bus port)."""


class Node:
    """One ``redis-server`` process (a data node or, with ``sentinel``, a sentinel).

    Its first start moves it to a fresh reserved port (and bus port) if something else holds the one it
    was given, so read ``port`` after ``start()``; a later start (a restart) stays on the same port.
    """

    def __init__(self, directory: Path, port: int, args: list[str], sentinel: bool = False, aof: bool = True,
                 bus_port: int | None = None, fsync: str = "everysec"):
        self.dir, self.port, self.args, self.sentinel, self.aof = directory, port, args, sentinel, aof
        self.bus_port, self.fsync = bus_port, fsync  # bus_port: --cluster-port (a cluster node)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.started = False

    @property
    def log(self) -> Path:
        return self.dir / ("sentinel.log" if self.sentinel else "redis.log")

    def start(self) -> None:
        for attempt in range(5):
            try:
                self._start()
            except PortTaken:
                if self.started or attempt == 4:
                    raise
                release_port(self.port)
                self.port = reserve_port()
                if self.bus_port is not None:
                    release_port(self.bus_port)
                    self.bus_port = reserve_port()
                continue
            self.started = True
            return

    def _start(self) -> None:
        if self.sentinel:
            conf = self.dir / "sentinel.conf"
            if not conf.exists():  # sentinels rewrite their own config: keep it across restarts
                conf.write_text("\n".join(self.args) + "\n")
            cmd = ["redis-server", str(conf), "--sentinel", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", str(self.dir), "--logfile", str(self.log)]
        else:
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                   "--appendonly", "yes" if self.aof else "no", "--appendfsync", self.fsync, "--save", "",
                   "--logfile", str(self.log), *self.args]
            if self.bus_port is not None:
                cmd += ["--cluster-port", str(self.bus_port)]
        seen = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = self.client(timeout=0.3)

        def ours() -> bool:  # the server answering is this process, not another one holding the port
            assert self.proc is not None
            if self.proc.poll() is not None:
                said = ""
                if self.log.exists():
                    with open(self.log, "rb") as fh:
                        fh.seek(seen)
                        said = fh.read().decode(errors="replace")
                error = PortTaken if "Address already in use" in said else RuntimeError
                raise error(f"redis-server on port {self.port} exited: {said[-1500:]}")
            return client.info("server").get("process_id") == self.proc.pid

        try:
            _wait(ours, 10, f"redis on port {self.port}")
        finally:
            client.close()

    def client(self, timeout: float = 2.0) -> redis_lib.Redis:
        return redis_lib.Redis(port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class SentinelGroup:
    def __init__(self, directory: Path):
        primary, replica, *sentinels = free_ports(5)
        self.primary = Node(directory / "primary", primary, [])
        self.replica = Node(directory / "replica", replica, [])  # --replicaof the primary's port at start
        self.sentinels = [Node(directory / f"sentinel{i}", port, [], sentinel=True)  # monitor: likewise
                          for i, port in enumerate(sentinels)]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"sentinel://{hosts}/0?master_name={MASTER}"

    def start(self) -> None:
        self.primary.start()  # its port is final once it runs: the replica and the sentinels get it then
        self.replica.args = ["--replicaof", "127.0.0.1", str(self.primary.port)]
        self.replica.start()
        _wait(lambda: self.replica.client().info("replication").get("master_link_status") == "up", 20,
              "the replica to sync")
        for s in self.sentinels:
            s.args = [f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} 2",
                      f"sentinel down-after-milliseconds {MASTER} 1000",
                      f"sentinel failover-timeout {MASTER} 4000",
                      f"sentinel parallel-syncs {MASTER} 1"]
            s.start()
        # every sentinel sees the replica and the two other sentinels: a failover can be agreed on
        _wait(lambda: all(len(s.client().sentinel_slaves(MASTER)) == 1
                          and len(s.client().sentinel_sentinels(MASTER)) == 2 for s in self.sentinels),
              30, "the sentinels to discover the replica and each other", every=0.2)

    def master_port(self) -> int:
        host, port = self.sentinels[0].client().sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> int:
        """The new primary's port, once every sentinel names it and it answers as a primary (a client
        asking any sentinel then finds it)."""
        def agreed() -> int | None:
            ports = {int(s.client().sentinel_get_master_addr_by_name(MASTER)[1]) for s in self.sentinels}
            if len(ports) != 1 or old_port in ports:
                return None
            [port] = ports
            role = redis_lib.Redis(port=port, socket_timeout=1).info("replication")["role"]
            return port if role == "master" else None

        return _wait(agreed, timeout, "the failover", every=0.1)

    def stop(self) -> None:
        for node in [*self.sentinels, self.replica, self.primary]:
            node.stop()


class RedisClusterGroup:
    """Three ``--cluster-enabled`` primaries sharing the 16384 slots, no replicas."""

    def __init__(self, directory: Path, size: int = 3):
        self.nodes = [Node(directory / f"node{i}", reserve_port(), [
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "3000",
        ], aof=False, bus_port=reserve_port()) for i in range(size)]  # bus port: its own, not port + 10000

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> None:
        for n in self.nodes:
            n.start()
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in self.nodes],
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        _wait(lambda: all(_cluster_ok(n) for n in self.nodes), 30,
              "cluster_state:ok on every node", every=0.1)

    def keys_by_node(self, match: str) -> dict[int, list[str]]:
        """Every key matching ``match`` on each node (port -> keys): where the data really is."""
        out = {}
        for n in self.nodes:
            client = n.client()
            out[n.port] = sorted(k.decode() for k in client.scan_iter(match=match, count=1000))
            client.close()
        return out

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


def _cluster_ok(node: Node) -> bool:
    client = node.client()
    try:
        info = client.execute_command("CLUSTER INFO")  # redis-py parses it into a dict
        return dict(info).get("cluster_state") == "ok"
    finally:
        client.close()
