"""Real Redis topologies for the scale proofs: a Sentinel group and a three-primary Redis Cluster.

Every process is a ``redis-server`` on a free loopback port with its own directory under the test's
temp dir, started and stopped by the test. The Sentinel group (one primary, one replica, three
sentinels; AOF on, no RDB) has tight timings (``down-after-milliseconds`` 1000, ``failover-timeout``
4000) so a failover takes a few seconds. The cluster (``RedisClusterGroup``) is three primaries, no
replicas, nothing on disk, made with ``redis-cli --cluster create``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import redis as redis_lib

MASTER = "sharer-ha"


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports. Each socket is held until all are chosen: a port released at
    once can be handed out again by the next bind (two sentinels were once given the same port)."""
    held: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def free_cluster_port(taken: tuple[int, ...] = ()) -> int:
    """A free port whose cluster-bus port (+10000) is free too (so at most 55535), not in ``taken``."""
    import random

    for _ in range(200):
        port = random.randint(20000, 45000)
        if {port, port + 10000} & {q + d for q in taken for d in (0, 10000)}:
            continue
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


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


class Node:
    """One ``redis-server`` process (a data node or, with ``sentinel``, a sentinel)."""

    def __init__(self, directory: Path, port: int, args: list[str], sentinel: bool = False, aof: bool = True):
        self.dir, self.port, self.args, self.sentinel, self.aof = directory, port, args, sentinel, aof
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if self.sentinel:
            conf = self.dir / "sentinel.conf"
            if not conf.exists():  # sentinels rewrite their own config: keep it across restarts
                conf.write_text("\n".join(self.args) + "\n")
            cmd = ["redis-server", str(conf), "--sentinel", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", str(self.dir), "--logfile", str(self.dir / "sentinel.log")]
        else:
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                   "--appendonly", "yes" if self.aof else "no", "--appendfsync", "everysec", "--save", "",
                   "--logfile", str(self.dir / "redis.log"), *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = self.client(timeout=0.3)

        def ours() -> bool:  # the server answering is this process, not another one holding the port
            assert self.proc is not None
            if self.proc.poll() is not None:
                log = self.dir / ("sentinel.log" if self.sentinel else "redis.log")
                tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                raise RuntimeError(f"redis-server on port {self.port} exited: {tail}")
            return client.info("server").get("process_id") == self.proc.pid

        _wait(ours, 10, f"redis on port {self.port}")
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
        self.replica = Node(directory / "replica", replica,
                            ["--replicaof", "127.0.0.1", "0"])  # port filled in at start
        self.sentinels = []
        for i, port in enumerate(sentinels):
            self.sentinels.append(Node(directory / f"sentinel{i}", port, [
                f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} 2",
                f"sentinel down-after-milliseconds {MASTER} 1000",
                f"sentinel failover-timeout {MASTER} 4000",
                f"sentinel parallel-syncs {MASTER} 1",
            ], sentinel=True))

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"sentinel://{hosts}/0?master_name={MASTER}"

    def start(self) -> None:
        self.primary.start()
        self.replica.args = ["--replicaof", "127.0.0.1", str(self.primary.port)]
        self.replica.start()
        _wait(lambda: self.replica.client().info("replication").get("master_link_status") == "up", 20,
              "the replica to sync")
        for s in self.sentinels:
            s.start()
        # every sentinel sees the replica and the two other sentinels: a failover can be agreed on
        _wait(lambda: all(len(s.client().sentinel_slaves(MASTER)) == 1
                          and len(s.client().sentinel_sentinels(MASTER)) == 2 for s in self.sentinels),
              30, "the sentinels to discover the replica and each other", every=0.2)

    def master_port(self) -> int:
        host, port = self.sentinels[0].client().sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> int:
        return _wait(lambda: (p := self.master_port()) != old_port and p, timeout, "the failover", every=0.1)

    def stop(self) -> None:
        for node in [*self.sentinels, self.replica, self.primary]:
            node.stop()


class RedisClusterGroup:
    """Three ``--cluster-enabled`` primaries sharing the 16384 slots, no replicas."""

    def __init__(self, directory: Path, size: int = 3):
        ports: list[int] = []
        for _ in range(size):
            ports.append(free_cluster_port(tuple(ports)))
        self.nodes = [Node(directory / f"node{i}", port, [
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "3000",
        ], aof=False) for i, port in enumerate(ports)]

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
