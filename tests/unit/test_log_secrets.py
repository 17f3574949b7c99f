"""No log line carries a read token or an API key, also uvicorn's access log of a `?token=`."""

import logging
from collections.abc import Iterator

import pytest

from observability.logs import configure_logging

TOKEN = "jcr_eyJvIjoiYWxpY2UifQ.c2VjcmV0LW1hYw"
KEY = "jck_c2VjcmV0LWtleS1ieXRlcw"


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # NOTE: a uvicorn.Config with uvicorn's default log config, built by an earlier test in
    # this process, stops "uvicorn" and "uvicorn.access" from propagating; jobcast's own
    # processes pass log_config=None, so there both propagate to the root logger.
    uvicorn = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.access")]
    saved = [(u.propagate, u.disabled, u.level, u.handlers[:]) for u in uvicorn]
    for u in uvicorn:
        u.propagate, u.disabled, u.handlers[:] = True, False, []
        u.setLevel(logging.NOTSET)
    yield capsys
    root.handlers[:] = handlers
    root.setLevel(level)
    for u, (propagate, disabled, was, kept) in zip(uvicorn, saved, strict=True):
        u.propagate, u.disabled, u.handlers[:] = propagate, disabled, kept
        u.setLevel(was)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_access_log_masks_the_token_of_a_query(
    logs: pytest.CaptureFixture[str], fmt: str
) -> None:
    configure_logging(fmt, "INFO")
    # uvicorn's own format and arguments (uvicorn/protocols/http/httptools_impl.py)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        f"/messages/7/stream?after=2&token={TOKEN}&x=1",
        "1.1",
        200,
    )
    line = logs.readouterr().err
    assert TOKEN not in line
    assert "/messages/7/stream?after=2&token=***&x=1" in line


def test_a_key_or_token_anywhere_in_a_message_is_masked(logs: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")
    logging.getLogger("anything").warning("refused %s and Bearer %s", KEY, TOKEN)
    line = logs.readouterr().err
    assert KEY not in line
    assert TOKEN not in line
    assert "refused jck_*** and Bearer jcr_***" in line


def test_other_lines_are_untouched(logs: pytest.CaptureFixture[str]) -> None:
    configure_logging("text", "INFO")
    logging.getLogger("anything").info("job %s step %d", "jcr-like but not", 3)
    assert "job jcr-like but not step 3" in logs.readouterr().err
