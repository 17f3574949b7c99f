"""The HTTP limits a jobcast process hands uvicorn (how they behave: faults/test_http_abuse.py)."""

import resource

import uvicorn

from jobcast.http import server_limits
from jobcast.settings import Settings


def test_the_settings_reach_the_protocol_uvicorn_runs():
    settings = Settings(
        http_max_header_bytes=4096, http_header_timeout_seconds=1.5, http_max_connections=7
    )
    config = uvicorn.Config(object(), **server_limits.server_options(settings))  # type: ignore[arg-type]
    config.load()
    protocol = config.http_protocol_class
    assert issubclass(protocol, server_limits.LimitedHttpProtocol)
    assert (protocol.max_head_bytes, protocol.head_timeout, protocol.max_connections) == (
        4096,
        1.5,
        7,
    )


def test_the_connection_limit_stays_below_the_open_file_limit():
    options = server_limits.server_options(Settings(http_max_connections=10**9))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == hard, "the soft limit was raised to the hard one"
    assert options["http"].max_connections == soft // 2
