"""Logging: human-readable on a terminal, one JSON object per line otherwise."""

import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

import orjson

try:
    from opentelemetry import trace
except ImportError:  # the otel extra is optional
    trace = None  # type: ignore[assignment]

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

job_context: ContextVar[dict[str, Any]] = ContextVar("jobcast_job", default={})  # noqa: B039
"""The job the current task is handling (offset, fn, delivery, ...): on every log line."""


class JobContextFilter(logging.Filter):
    """Adds the current job's fields (and trace id, when tracing) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in job_context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "trace_id") and (trace_id := current_trace_id()):
            record.trace_id = trace_id
        return True


_SECRETS = re.compile(r"(?i)(token=|\bjc[rk]_)[^&\s\"'<>]+")


class SecretFilter(logging.Filter):
    """Masks credentials in every line: a `?token=` query (uvicorn's access log prints the
    path with its query, JOBCAST_ACCESS_LOG) and anything shaped like an API key (jck_) or a
    read token (jcr_), wherever a message would carry one."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _SECRETS.sub(r"\1***", message)
        if masked != message:
            # NOTE: the formatted message replaces the template, so no handler sees the args.
            record.msg, record.args = masked, None
        return True


def current_trace_id() -> str | None:
    """The active OpenTelemetry trace id in hex, if the otel extra is installed and tracing."""
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with any `extra=` fields beside the message."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(fmt: str, level: str) -> None:
    """Set up the root logger once per process."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if use_json
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    handler.addFilter(JobContextFilter())
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
