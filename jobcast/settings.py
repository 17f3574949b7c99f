"""Every setting of every jobcast process, from the environment (prefix JOBCAST_)."""

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contracts.batches import MAX_BATCH_BYTES
from contracts.errors import ConfigurationError
from contracts.messages import MAX_RESULT_BYTES
from contracts.topology import DELIVERY_LIMIT
from contracts.urls import node_urls
from jobcast.http.cors import ANY_ORIGIN, allowed_origins
from ledger.retention import MAX_DURATION, parse_duration
from producer.rate_limit import RateLimit
from query.feed_slots import DEFAULT_FEEDS_PER_KEY

MAX_PREFETCH = 65535
"""AMQP's prefetch count is a 16-bit number: a larger one fails at the broker, at start."""

MAX_QUORUM_SIZE = 7
"""RabbitMQ advises quorum groups of 3, 5 or 7 replicas: more only slows every write."""


class Settings(BaseSettings):
    """jobcast's settings; the README's table lists each with its default."""

    model_config = SettingsConfigDict(env_prefix="JOBCAST_", extra="ignore")

    amqp_url: str = Field(
        "amqp://guest:guest@localhost:5672/",
        description="RabbitMQ URL; amqps://host:5671/vhost?cafile=/path/ca.pem for TLS "
        "(certfile= and keyfile= for a client certificate). A cluster: its nodes as one URL "
        "with several hosts, amqp://user:password@host1:5672,host2:5672,host3:5672/vhost; "
        "each process connects to the first that answers and moves to another when its node "
        "is lost. Printed with its password masked.",
    )
    quorum_size: int | None = Field(
        None,
        ge=1,
        le=MAX_QUORUM_SIZE,
        description="Replicas (cluster nodes) of each quorum queue jobcast creates "
        "(x-quorum-initial-group-size): 3 on a three-node cluster survives the loss of one "
        "node. Unset: RabbitMQ's default, a replica on every node. Counts when a queue is "
        "created only; an existing queue keeps its replicas (a warning says so).",
    )
    allow_guest: bool = Field(
        False,
        description="Allow RabbitMQ's guest user against a broker that is not on this machine "
        "(refused otherwise: give each process its own user, deploy/rabbitmq/definitions.json).",
    )
    signing_key: SecretStr | None = Field(
        None,
        description="Shared by gateways and workers: jobs and replies are signed with it, and "
        "only signed ones are run and stored. Unset: a public development key, refused "
        "against a broker that is not on this machine.",
    )
    database_url: str = Field(
        "sqlite:///jobcast.db",
        description="Ledger: sqlite:///file.db (default) or postgresql://user@host/db "
        "(?sslmode=verify-full&sslrootcert=/path/ca.pem for TLS). Printed with its password "
        "masked.",
    )
    auth: Literal["off", "on"] = Field(
        "off",
        description="on: every endpoint but /health and /ready needs an API key (jobcast keys "
        "add) and a key reads only its own jobs. off (the local quickstart): anyone who reaches "
        "the gateway reads every job; must be on in production.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Web pages on other origins that may call the gateway (schedule, read, "
        "follow): comma-separated exact origins as a browser sends them "
        "(https://app.example.com), or * for any page, refused with JOBCAST_AUTH=on. Unset: "
        "none (CORS off). Credentials (cookies) are never allowed.",
    )
    host: str = Field("127.0.0.1", description="Gateway HTTP bind address.")
    port: int = Field(8000, description="Gateway HTTP port.")
    step_seconds: float = Field(
        1.0, ge=0, description="Duration of each default_fn step (0 for benchmarks)."
    )
    pipelines: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated modules whose Pipeline objects workers load.",
    )
    worker_concurrency: int = Field(
        256,
        ge=1,
        le=MAX_PREFETCH,
        description="Jobs one worker runs at once (its prefetch on jobcast.jobs).",
    )
    step_attempts: int = Field(3, ge=1, description="Tries per step before the job fails.")
    retry_initial_seconds: float = Field(0.5, ge=0, description="First retry backoff.")
    retry_max_seconds: float = Field(10.0, ge=0, description="Backoff cap (jitter added).")
    grace_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM: how long running steps may take to finish."
    )
    publish_timeout_seconds: float = Field(
        15.0, gt=0, description="How long to wait for a broker confirm before giving up (503)."
    )
    resume_timeout_seconds: float = Field(
        3.0, gt=0, description="How long a worker asks the query side where to resume."
    )
    max_deliveries: int = Field(
        DELIVERY_LIMIT - 2,
        ge=1,
        le=DELIVERY_LIMIT,
        description="A job handed to workers this often (each crashed or lost the broker on "
        "it) fails with a reason instead of running again: jobcast's cap before the broker's "
        f"delivery limit ({DELIVERY_LIMIT}).",
    )
    ledger_prefetch: int = Field(
        256,
        ge=1,
        le=MAX_PREFETCH,
        description="Replies the query handler takes at once (batch size bound).",
    )
    max_body_bytes: int = Field(
        65536, ge=1, description="Largest HTTP request body; larger ones get 413."
    )
    max_result_bytes: int = Field(
        MAX_RESULT_BYTES,
        ge=1,
        le=MAX_RESULT_BYTES,
        description="Largest step result (its JSON) a worker publishes; a larger one fails the "
        f"job with the reason instead of filling the ledger (at most {MAX_RESULT_BYTES}).",
    )
    max_batch_body_bytes: int = Field(
        1_048_576,
        ge=1,
        le=MAX_BATCH_BYTES,
        description="Largest body of POST /schedule/batch (at most 8 MiB); larger ones get 413.",
    )
    retention: timedelta | None = Field(
        None,
        description="Finished jobs older than this are purged in the background (7d, 12h, 30m, "
        "90s or seconds); their offsets answer 410. Unset: kept for ever.",
    )
    http_max_header_bytes: int = Field(
        16384,
        ge=1024,
        description="Largest HTTP request head (request line and headers); a larger one gets "
        "431 and its connection is closed.",
    )
    http_header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A connection that has not sent a whole request head this long after it "
        "opened (or began the request) is closed.",
    )
    http_max_connections: int = Field(
        4096,
        ge=1,
        description="Open HTTP connections (SSE streams included) per process, at most half "
        "the open-file limit; beyond it a request gets 503 and Connection: close.",
    )
    max_feeds_per_key: int = Field(
        DEFAULT_FEEDS_PER_KEY,
        ge=1,
        le=4096,
        description="With JOBCAST_AUTH=on: GET /jobs/stream feeds one API key may hold open at "
        "once on a gateway (each stored reply wakes every feed); the next is 429.",
    )
    worker_port: int = Field(
        0, ge=0, description="Worker's /health, /ready and /metrics port (0: off)."
    )
    url: str = Field(
        "http://127.0.0.1:8000",
        description="The gateway the CLI's submit, watch and status talk to.",
    )
    tracing: Literal["off", "console", "otlp"] = Field(
        "off",
        description="OpenTelemetry traces (otel extra): console = one JSON span per line on "
        "stderr; otlp = to OTEL_EXPORTER_OTLP_ENDPOINT.",
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: text on a terminal, JSON otherwise."
    )
    log_level: str = Field("INFO", description="Python logging level.")
    access_log: bool = Field(
        False,
        description="Log every HTTP request (uvicorn's access log): one line per request "
        "(a `?token=` in it is masked).",
    )
    read_token_ttl: timedelta = Field(
        timedelta(hours=1),
        description="With JOBCAST_AUTH=on: how long the read_token POST /schedule answers reads "
        "(7d, 12h, 30m, 90s or seconds); POST /tokens may ask for another, up to a day.",
    )
    rate_limit: str | None = Field(
        None,
        description="Submissions per API key per second, with a burst: `20/s,burst=40` (burst "
        "defaults to the rate). Over it: 429 with Retry-After. Per gateway. Unset or off: none.",
    )

    @field_validator("amqp_url")
    @classmethod
    def _amqp_nodes(cls, value: str) -> str:
        # NOTE: refused at start, saying what is wrong. A ConfigurationError, not a ValueError:
        # pydantic would print the value, password and all, beside the message.
        try:
            node_urls(value)
        except ValueError as exc:
            raise ConfigurationError(f"JOBCAST_AMQP_URL: {exc}") from None
        return value

    @field_validator("quorum_size", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return value.split(",") if isinstance(value, str) else value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return allowed_origins(value)

    @model_validator(mode="after")
    def _no_open_cors_with_auth(self) -> "Settings":
        # NOTE: refused at start: with keys on, `*` would let any page on the web drive the
        # API with whatever key or token it gets hold of; name the pages that may.
        if self.auth == "on" and ANY_ORIGIN in self.cors_origins:
            raise ValueError(
                "JOBCAST_CORS_ORIGINS=* (any web page) is refused with JOBCAST_AUTH=on: list "
                "the exact origins of the pages that may call this gateway "
                "(JOBCAST_CORS_ORIGINS=https://app.example.com,https://admin.example.com)"
            )
        return self

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str | None) -> str | None:
        RateLimit.parse(value)  # NOTE: refused at start, not at the first submission
        return value

    @field_validator("read_token_ttl", mode="before")
    @classmethod
    def _ttl(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("read_token_ttl")
    @classmethod
    def _ttl_bounds(cls, value: timedelta) -> timedelta:
        # NOTE: a token's expiry is in whole seconds: under one, tokens were minted expired
        if value < timedelta(seconds=1):
            raise ValueError("a read token must live at least 1 second")
        return _at_most_a_century(value)

    @field_validator("retention")
    @classmethod
    def _retention_bounds(cls, value: timedelta | None) -> timedelta | None:
        return None if value is None else _at_most_a_century(value)

    @field_validator("retention", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_duration(value) if value.strip() else None
        return value

    @field_validator("pipelines", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


def _at_most_a_century(value: timedelta) -> timedelta:
    if value > MAX_DURATION:
        raise ValueError(f"a duration must be at most {MAX_DURATION.days} days (a century)")
    return value
