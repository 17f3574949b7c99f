"""Connection URLs as they may be shown (a password never leaves the process in one), and the
nodes of a RabbitMQ cluster named in one URL."""

import ipaddress
from urllib.parse import SplitResult, urlsplit, urlunsplit

MASK = "***"

AMQP_SCHEMES = ("amqp", "amqps")
MAX_NODES = 16
"""Bound on the nodes one URL may name (RabbitMQ clusters have 3, 5 or 7)."""


def node_urls(url: str) -> tuple[str, ...]:
    """One URL per node of `url`, in order: `amqp://user:pass@host1:5672,host2:5673,host3/vhost`
    names three nodes sharing the credentials, vhost and query (as libpq and MongoDB write
    several hosts). A URL with one host is returned as it is. ValueError, saying what is wrong
    and never with the password, for anything else."""
    shown = masked_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"RabbitMQ URL {shown!r} is not a URL: {exc}") from None
    if parts.scheme not in AMQP_SCHEMES:
        raise ValueError(
            f"RabbitMQ URL {shown!r} must start with amqp:// or amqps:// "
            "(several nodes: amqp://user:password@host1:5672,host2:5672/vhost)"
        )
    if "://" in parts.netloc + parts.path:
        # NOTE: not shown: each URL may hold a password of its own
        raise ValueError(
            "the RabbitMQ URL is a list of URLs: write one URL with several hosts, "
            "amqp://user:password@host1:5672,host2:5672/vhost (one user and vhost for all)"
        )
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not hosts:
        return (url,)  # amqp:/// : the client library's default host, as before
    names = hosts.split(",")
    if len(names) > MAX_NODES:
        raise ValueError(f"RabbitMQ URL {shown!r} names {len(names)} nodes; at most {MAX_NODES}")
    found: list[str] = []
    for name in names:
        node = parts._replace(netloc=f"{userinfo}{at}{name}")
        _check_node(node, name, shown)
        if node.geturl() in found:
            raise ValueError(f"RabbitMQ URL {shown!r} names node {name!r} twice")
        found.append(node.geturl())
    return tuple(found)


def _check_node(node: SplitResult, name: str, shown: str) -> None:
    if not name.strip():
        raise ValueError(f"RabbitMQ URL {shown!r} has an empty host (two commas, or one at an end)")
    try:
        port = node.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(
            f"RabbitMQ URL {shown!r}: node {name!r} has no valid port (a number 1-65535)"
        )
    if not node.hostname:
        raise ValueError(f"RabbitMQ URL {shown!r}: node {name!r} has no host")


def masked_url(url: str) -> str:
    """`url` with its password (if any) replaced by ***: the one form a broker or database URL
    is printed in (logs, errors, /ready). A URL that cannot be parsed is masked whole."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = _netloc(parts, MASK)
    except ValueError:
        return MASK
    return urlunsplit(parts._replace(netloc=netloc))


def _netloc(parts: SplitResult, password: str) -> str:
    userinfo, host = parts.netloc.rsplit("@", 1)
    return f"{userinfo.split(':', 1)[0]}:{password}@{host}"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses: a server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_of(url: str) -> str:
    """The host a URL names (localhost when it names none)."""
    return urlsplit(url).hostname or "localhost"


def scrubbed(text: str, *urls: str) -> str:
    """`text` (an exception's, say) with every password of `urls` in it replaced by ***."""
    for url in urls:
        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:
            continue
        if password:
            text = text.replace(urlunsplit(parts), masked_url(url)).replace(password, MASK)
    return text
