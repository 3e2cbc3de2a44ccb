"""Where the data store and the broker are: Redis, Redis Sentinel, or (broker only) RabbitMQ.

One parser for every URL sharer accepts, so the config check, the workers, the web app and the CLI
agree on what a URL means. The forms:

* ``redis://[[user]:password@]host[:port][/db]`` (``rediss://`` for TLS, ``unix:///path.sock?db=N``);
* ``sentinel://[[user]:password@]h1:26379,h2:26379,h3:26379[/db]?master_name=mymaster`` — a
  Sentinel group; the password in the URL is the *Redis* one, ``sentinel_password=…`` (and
  ``sentinel_username=…``) the Sentinels' own if they have ``requirepass``; ``ssl=true`` for TLS to
  the primary. kombu's own spelling, ``sentinel://h1:26379;sentinel://h2:26379`` with the same query
  on any of them, is accepted too.
* data store only: ``redis+cluster://[[user]:password@]h1:7000,h2:7001[/0][?ssl=true]`` (or
  ``rediss+cluster://``) — a Redis Cluster, found from any of the listed nodes; its keys carry one hash
  tag (``store/keys.py``), so one deployment's data lives on one slot;
* broker only: ``amqp://user:password@host:5672/vhost`` (also ``pyamqp://``, ``amqps://``) — RabbitMQ;
  sharer declares its queues as quorum queues there.

A Redis Cluster cannot be the Celery broker (kombu's Redis transport uses multi-key commands across
queues): it is refused at start with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis

REDIS_SCHEMES = ("redis", "rediss", "unix")
AMQP_SCHEMES = ("amqp", "pyamqp", "amqps")
SENTINEL_PORT = 26379
_SENTINEL_QUERY = {"master_name", "sentinel_password", "sentinel_username", "ssl"}


class UrlError(ValueError):
    """A URL sharer cannot use; the message says why (never the password)."""


@dataclass(frozen=True)
class SentinelGroup:
    """A Redis primary found through its Sentinels."""

    sentinels: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False

    def redis_kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"db": self.db}
        if self.username:
            out["username"] = self.username
        if self.password:
            out["password"] = self.password
        if self.ssl:
            out["ssl"] = True
        return out

    def sentinel_kwargs(self, **socket: Any) -> dict[str, Any]:
        out = dict(socket)
        if self.sentinel_username:
            out["username"] = self.sentinel_username
        if self.sentinel_password:
            out["password"] = self.sentinel_password
        return out


@dataclass(frozen=True)
class ClusterNodes:
    """A Redis Cluster, reached through any of its listed nodes (the client learns the rest)."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    ssl: bool = False


CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def is_cluster(url: str) -> bool:
    """A data-store URL naming a Redis Cluster (``redis+cluster://…``)."""
    return urlsplit(url).scheme.lower() in CLUSTER_SCHEMES


def parse_cluster(url: str) -> ClusterNodes:
    """``redis+cluster://[user:pw@]h1:7000,h2:7001[/0][?ssl=true]`` → the nodes to start from."""
    parts = urlsplit(url)
    netloc = parts.netloc
    username = password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        user, _, pw = auth.partition(":")
        username, password = unquote(user) or None, unquote(pw) or None
    nodes = tuple(_host_port(h.strip(), 6379) for h in netloc.split(",") if h.strip())
    if not nodes:
        raise UrlError("a Redis Cluster URL needs at least one host:port (redis+cluster://h1:7000,h2:7001)")
    if parts.path.strip("/") not in ("", "0"):
        raise UrlError("a Redis Cluster has only database 0")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(query) - {"ssl"}
    if unknown:
        raise UrlError(f"unknown Redis Cluster URL option {sorted(unknown)[0]!r} (known: ssl)")
    ssl = parts.scheme.lower() == "rediss+cluster" or query.get("ssl", "").lower() in ("1", "true", "yes")
    return ClusterNodes(nodes, username, password, ssl)


def _is_cluster(url: str) -> bool:
    parts = urlsplit(url)
    query = {k.lower(): v for k, v in parse_qs(parts.query).items()}
    return "cluster" in parts.scheme.lower() or query.get("cluster", [""])[0].lower() in ("1", "true", "yes")


def parse_sentinel(url: str) -> SentinelGroup:
    """``sentinel://…`` (ours, comma-separated hosts, or kombu's ``;``-separated URLs) → the group."""
    pieces = [p.strip() for p in url.split(";") if p.strip()]
    hosts: list[tuple[str, int]] = []
    query: dict[str, str] = {}
    db, username, password = 0, None, None
    for piece in pieces:
        parts = urlsplit(piece)
        if parts.scheme != "sentinel":
            raise UrlError(f"every part of a Sentinel URL must start with sentinel://, got {parts.scheme}://")
        netloc = parts.netloc
        if "@" in netloc:
            auth, netloc = netloc.rsplit("@", 1)
            user, _, pw = auth.partition(":")
            username, password = unquote(user) or None, unquote(pw) or None
        for hostport in netloc.split(","):
            host, port = _host_port(hostport.strip())
            hosts.append((host, port))
        path = parts.path.strip("/")
        if path:
            if not path.isdigit():
                raise UrlError(f"the database after the hosts must be a number, got {path!r}")
            db = int(path)
        for key, values in parse_qs(parts.query, keep_blank_values=True).items():
            if key not in _SENTINEL_QUERY:
                raise UrlError(f"unknown Sentinel URL option {key!r} (known: {', '.join(sorted(_SENTINEL_QUERY))})")
            query[key] = values[-1]
    if not hosts:
        raise UrlError("a Sentinel URL needs at least one host:port")
    master = query.get("master_name", "")
    if not master:
        raise UrlError("a Sentinel URL needs ?master_name=NAME (the name the Sentinels monitor)")
    return SentinelGroup(tuple(hosts), master, db, username, password, query.get("sentinel_username") or None,
                         query.get("sentinel_password") or None,
                         query.get("ssl", "").lower() in ("1", "true", "yes"))


def _host_port(text: str, default: int = SENTINEL_PORT) -> tuple[str, int]:
    if not text:
        raise UrlError("empty host in the host list")
    if text.startswith("["):  # [ipv6]:port
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if port and not port.isdigit():
        raise UrlError(f"bad port in {text!r}")
    if not host:
        raise UrlError(f"no host in {text!r}")
    return host, int(port) if port else default


def check_data_url(url: str) -> None:
    """The data store's URL: Redis, Sentinel or a Redis Cluster (``redis+cluster://``)."""
    scheme = urlsplit(url).scheme.lower()
    if is_cluster(url):
        parse_cluster(url)
    elif _is_cluster(url):
        raise UrlError("write a Redis Cluster as redis+cluster://host:port[,host:port…] (rediss+cluster:// "
                       "for TLS)")
    elif scheme == "sentinel":
        parse_sentinel(url)
    elif scheme not in REDIS_SCHEMES:
        raise UrlError(f"must be a redis://, rediss://, unix:// or sentinel:// URL, got {scheme or 'no'} scheme")


def check_broker_url(url: str) -> None:
    """The broker's URL: Redis, Sentinel or RabbitMQ — never a Redis Cluster."""
    scheme = urlsplit(url).scheme.lower()
    if _is_cluster(url):
        raise UrlError("Celery's broker cannot be a Redis Cluster (kombu's Redis transport needs all its queue "
                       "keys on one node); use a Redis or Sentinel group (sentinel://…?master_name=…) or "
                       "RabbitMQ (amqp://…)")
    if scheme == "sentinel":
        parse_sentinel(url)
    elif scheme not in REDIS_SCHEMES + AMQP_SCHEMES:
        raise UrlError(f"must be a redis://, rediss://, unix://, sentinel:// or amqp:// URL, got {scheme or 'no'} "
                       "scheme")


def is_amqp(url: str) -> bool:
    return urlsplit(url).scheme.lower() in AMQP_SCHEMES


def is_sentinel(url: str) -> bool:
    return urlsplit(url).scheme.lower() == "sentinel"


# --- clients ---------------------------------------------------------------------------------------

def _cluster_kwargs(url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    group = parse_cluster(url)
    out = dict(kwargs)
    out.pop("health_check_interval", None)  # the cluster client checks its nodes itself
    if group.username:
        out["username"] = group.username
    if group.password:
        out["password"] = group.password
    if group.ssl:
        out["ssl"] = True
    return out


def redis_client(url: str, **kwargs: Any) -> redis.Redis:
    """A client for a Redis URL, the current primary of a Sentinel group (followed across failovers), or
    a Redis Cluster (typed as ``Redis``: sharer uses only commands whose keys share one slot, which the
    cluster client speaks alike)."""
    if is_cluster(url):
        from redis.cluster import ClusterNode, RedisCluster

        nodes = [ClusterNode(h, p) for h, p in parse_cluster(url).nodes]
        return cast(redis.Redis, RedisCluster(startup_nodes=nodes, **_cluster_kwargs(url, kwargs)))
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **kwargs)
    from redis.sentinel import Sentinel

    group = parse_sentinel(url)
    socket = {k: v for k, v in kwargs.items() if k.startswith("socket_")}
    manager = Sentinel(list(group.sentinels), sentinel_kwargs=group.sentinel_kwargs(**socket), **socket)
    return manager.master_for(group.master_name, **{**kwargs, **group.redis_kwargs()})


def async_redis_client(url: str, **kwargs: Any) -> Any:
    """The asyncio twin of :func:`redis_client` (the web app's SSE stream)."""
    import redis.asyncio as aioredis

    if is_cluster(url):
        from redis.asyncio.cluster import ClusterNode as AsyncNode
        from redis.asyncio.cluster import RedisCluster as AsyncCluster

        nodes = [AsyncNode(h, p) for h, p in parse_cluster(url).nodes]
        return AsyncCluster(startup_nodes=nodes, **_cluster_kwargs(url, kwargs))
    if not is_sentinel(url):
        return aioredis.Redis.from_url(url, **kwargs)
    from redis.asyncio.sentinel import Sentinel

    group = parse_sentinel(url)
    socket = {k: v for k, v in kwargs.items() if k.startswith("socket_")}
    manager = Sentinel(list(group.sentinels), sentinel_kwargs=group.sentinel_kwargs(**socket), **socket)
    return manager.master_for(group.master_name, **{**kwargs, **group.redis_kwargs()})


def celery_broker(url: str) -> tuple[str, dict[str, Any]]:
    """(broker_url for Celery, extra broker transport options) — Sentinel translated to kombu's form."""
    if not is_sentinel(url):
        return url, {}
    group = parse_sentinel(url)
    auth = ""
    if group.username or group.password:
        auth = f"{quote(group.username or '', safe='')}:{quote(group.password or '', safe='')}@"
    scheme = "sentinel"
    kombu_url = ";".join(f"{scheme}://{auth}{_netloc(h, p)}/{group.db}" for h, p in group.sentinels)
    options: dict[str, Any] = {"master_name": group.master_name}
    sentinel_kwargs = group.sentinel_kwargs()
    if sentinel_kwargs:
        options["sentinel_kwargs"] = sentinel_kwargs
    if group.ssl:
        options["ssl"] = True
    return kombu_url, options


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def safe_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs)."""
    out = []
    for piece in url.split(";"):
        parts = urlsplit(piece)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            piece = parts._replace(netloc=netloc).geturl()
        out.append(re.sub(r"(sentinel_password=)[^&]*", r"\1***", piece))
    return ";".join(out)
