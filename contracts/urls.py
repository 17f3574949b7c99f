"""Connection URLs as they may be shown: a password never leaves the process in one."""

import ipaddress
from urllib.parse import SplitResult, urlsplit, urlunsplit

MASK = "***"


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
