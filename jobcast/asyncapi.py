"""The AsyncAPI document of jobcast's broker side, built from what the code declares.

Every channel is a queue or an exchange of contracts/topology.py, described by the text written
there; every payload is a pydantic model of contracts/, its schema pydantic's; who sends and who
receives what is contracts/channels.py's OPERATIONS, whichever library carries the message
(aio-pika carries jobs, submissions and replies, FastStream the progress RPC).

# NOTE: built here, not by FastStream's generator: that one documents the subscribers and
# publishers a running broker has, with payloads read from handler signatures, so it had to be
# fed stand-in handlers; it has no place for a queue's x-arguments, its binding, an address
# parameter or a queue no jobcast process consumes (jobcast.dead); and its order of channels
# varies between runs.
"""

from copy import deepcopy
from functools import cache
from importlib.metadata import version
from typing import Any
from urllib.parse import quote

import yaml
from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from contracts.channels import DEAD_LETTER, OPERATIONS, SIGNED, Message, Opaque
from contracts.errors import DeadLetterReason
from contracts.headers import (
    HEADER_KEY,
    HEADER_REASON,
    HEADER_REASON_CODE,
    HEADER_SIGNATURE,
    HEADER_SOURCE,
)
from contracts.topology import ALL_EXCHANGES, ALL_QUEUES, BINDINGS, Exchange, Queue

DEAD_LETTER_HEADERS = {
    "type": "object",
    "properties": {
        HEADER_REASON: {"type": "string", "description": "Why, in words."},
        HEADER_REASON_CODE: {"enum": [reason.value for reason in DeadLetterReason]},
        HEADER_SOURCE: {"type": "string", "description": "The queue it was taken from."},
    },
}

SIGNATURE_HEADERS = {
    "type": "object",
    "properties": {
        HEADER_SIGNATURE: {
            "type": "string",
            "description": "The body's HMAC, with the key every gateway and worker shares.",
        }
    },
    "required": [HEADER_SIGNATURE],
}

KEY_HEADERS = {
    "type": "object",
    "properties": {
        HEADER_KEY: {
            "type": "string",
            "description": "With JOBCAST_AUTH=on: the sender's API key (jck_...); without a "
            "valid one the message is dead-lettered (`unauthorized`) and answered so. Never "
            "logged, never copied to jobcast.dead.",
        }
    },
}
SUBMISSIONS = ("JobRequest", "BatchRequest", "CancelRequest")
"""The messages a client sends (jobcast.schedule, .schedule.batch, .cancel): they carry a key."""


INFO_DESCRIPTION = """jobcast's broker interface: the queues and exchanges of \
contracts/topology.py, what each carries and who sends or receives it. An operation's action is \
jobcast's: `send` is a jobcast process publishing, `receive` one consuming."""

SERVER = {"host": "localhost:5672", "pathname": "/", "protocol": "amqp", "protocolVersion": "0.9.1"}
BINDING_VERSION = "0.3.0"
REPLY_TO = "$message.header#/reply_to"
CORRELATION_ID = "$message.header#/correlation_id"


def _name(message: Message) -> str:
    return message.name if isinstance(message, Opaque) else message.__name__


def _ref(*path: str) -> dict[str, str]:
    """A reference to `#/path...`, each part escaped as a URI fragment wants it."""
    return {"$ref": "#/" + "/".join(quote(part, safe=":.*") for part in path)}


def _channel_id(on: Queue | Exchange, routing_key: str = "") -> str:
    return f"{on.name}:{routing_key}" if routing_key else on.name


def _queue_channel(queue: Queue) -> dict[str, Any]:
    channel: dict[str, Any] = {
        # NOTE: as FastStream addresses a consumer's channel: by the key a bound queue is bound
        # with, else by the queue's name.
        "address": queue.routing_key or queue.name,
        "description": queue.description,
        "bindings": {
            "amqp": {
                "is": "queue",
                "queue": {
                    "name": queue.name,
                    "durable": queue.durable,
                    "exclusive": False,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": BINDING_VERSION,
            }
        },
        "x-arguments": dict(queue.arguments),
    }
    for bound, exchange in BINDINGS:
        if bound is queue:
            channel["x-bound-to"] = {"exchange": exchange.name, "routingKey": queue.routing_key}
    return channel


def _exchange_channel(exchange: Exchange, routing_key: str) -> dict[str, Any]:
    channel: dict[str, Any] = {
        # NOTE: null: the key is the sender's (jobcast's dead-letter copies use the source
        # queue's name; a fanout exchange ignores it).
        "address": routing_key or None,
        "description": exchange.description,
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": exchange.name,
                    "type": exchange.type.value,
                    "durable": exchange.durable,
                    "autoDelete": False,
                    "vhost": "/",
                },
                "bindingVersion": BINDING_VERSION,
            }
        },
    }
    names = [part.split("}")[0] for part in routing_key.split("{")[1:]]
    if names:
        # NOTE: AsyncAPI 3 wants every {name} of an address declared as a parameter.
        channel["parameters"] = {name: {"description": f"The job's {name}."} for name in names}
    return channel


def _answer_channel(requests: Queue | Exchange) -> dict[str, Any]:
    return {
        "address": None,
        "description": f"The answer to a request on {requests.name}, sent to the request's "
        "reply_to with its correlation_id.",
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {"type": "default", "vhost": "/"},
                "bindingVersion": BINDING_VERSION,
            }
        },
    }


def _channels() -> dict[str, dict[str, Any]]:
    """Every queue and exchange of the topology, an exchange once per key jobcast publishes
    with, and where the answers of a request go; each with the messages it carries."""
    channels = {queue.name: _queue_channel(queue) for queue in ALL_QUEUES}
    keys = {(op.on.name, op.routing_key) for op in OPERATIONS if isinstance(op.on, Exchange)}
    for exchange in ALL_EXCHANGES:
        for key in sorted({k for name, k in keys if name == exchange.name} or {""}):
            channels[_channel_id(exchange, key)] = _exchange_channel(exchange, key)
    for channel in channels.values():
        channel["messages"] = {}
    for op in OPERATIONS:
        carried = channels[_channel_id(op.on, op.routing_key)]["messages"]
        for message in op.messages:
            carried[_name(message)] = _ref("components", "messages", _name(message))
        if op.answers:
            answer = channels.setdefault(f"{op.on.name}:answer", _answer_channel(op.on))
            answer.setdefault("messages", {}).update(
                {m.__name__: _ref("components", "messages", m.__name__) for m in op.answers}
            )
    for queue, exchange in BINDINGS:
        # a bound queue holds whatever is published to its exchange
        for key, channel in list(channels.items()):
            if key == exchange.name or key.startswith(f"{exchange.name}:"):
                channels[queue.name]["messages"].update(deepcopy(channel["messages"]))
    return channels


def _operations() -> dict[str, dict[str, Any]]:
    operations: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        channel = _channel_id(op.on, op.routing_key)
        operation: dict[str, Any] = {
            "action": op.action,
            "channel": _ref("channels", channel),
            "description": op.who,
            "messages": [_ref("channels", channel, "messages", _name(m)) for m in op.messages],
        }
        if op.answers:
            answer = f"{op.on.name}:answer"
            operation["reply"] = {
                "address": {"location": REPLY_TO},
                "channel": _ref("channels", answer),
                "messages": [_ref("channels", answer, "messages", m.__name__) for m in op.answers],
            }
        operations[f"{channel}:{op.action}"] = operation
    return operations


def _models() -> list[type[BaseModel]]:
    """Every model a message carries, each once, in the order OPERATIONS names them."""
    found: dict[str, type[BaseModel]] = {}
    for op in OPERATIONS:
        for message in (*op.messages, *op.answers):
            if not isinstance(message, Opaque):
                found.setdefault(message.__name__, message)
    return list(found.values())


def _components() -> dict[str, Any]:
    models = _models()
    _, schemas = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )
    answers = {model for op in OPERATIONS for model in op.answers}
    messages: dict[str, Any] = {}
    for model in models:
        messages[model.__name__] = {
            "name": model.__name__,
            "title": model.__name__,
            "contentType": "application/json",
            "payload": _ref("components", "schemas", model.__name__),
        }
        if model in SIGNED:
            messages[model.__name__]["headers"] = deepcopy(SIGNATURE_HEADERS)
        if model.__name__ in SUBMISSIONS:
            messages[model.__name__]["headers"] = deepcopy(KEY_HEADERS)
        if model in answers:
            messages[model.__name__]["correlationId"] = {"location": CORRELATION_ID}
    messages[DEAD_LETTER.name] = {
        "name": DEAD_LETTER.name,
        "title": DEAD_LETTER.name,
        "description": DEAD_LETTER.description,
        "headers": deepcopy(DEAD_LETTER_HEADERS),
        "payload": {"description": "The original body, as it came."},
    }
    return {"messages": messages, "schemas": schemas.get("$defs", {})}


@cache
def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document, as a dict (built once per process; do not mutate)."""
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "jobcast",
            "version": version("jobcast"),
            "description": INFO_DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {"development": SERVER},
        "channels": _channels(),
        "operations": _operations(),
        "components": _components(),
    }


def to_yaml(doc: dict[str, Any]) -> str:
    """The document as YAML, keys in document order."""
    text: str = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    return text


router = APIRouter(tags=["documentation"])


@router.get("/asyncapi", summary="AsyncAPI document (JSON)")
async def asyncapi_json() -> JSONResponse:
    """The broker side's contract: queues, the reply topic and every message schema."""
    return JSONResponse(document())


@router.get(
    "/asyncapi.yaml",
    summary="AsyncAPI document (YAML)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"application/yaml": {}}}},
)
async def asyncapi_yaml() -> PlainTextResponse:
    """The same document as YAML, as committed in docs/asyncapi.yaml."""
    return PlainTextResponse(to_yaml(document()), media_type="application/yaml")
