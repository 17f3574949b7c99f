"""The contracts people read: AsyncAPI (broker side) and OpenAPI (HTTP side), valid and current."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_spec_validator import validate

from contracts import topology
from contracts.channels import OPERATIONS, Opaque
from contracts.topology import ALL_EXCHANGES, ALL_QUEUES, BINDINGS, Exchange, Queue
from jobcast.asyncapi import document, to_yaml
from jobcast.gateway import create_app
from jobcast.settings import Settings

EXPORT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # NOTE: no lifespan: neither broker nor ledger is needed to serve documents.
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jobcast") as client:
        yield client


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in _refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("%7B", "{").replace("%7D", "}").replace("~1", "/").replace("~0", "~")
        node = node[part]
    return node


def test_committed_asyncapi_export_is_current():
    assert EXPORT.read_text() == to_yaml(document()), (
        "docs/asyncapi.yaml is stale: run `jobcast asyncapi > docs/asyncapi.yaml`"
    )


def test_asyncapi_names_the_public_topology_and_every_message():
    doc = yaml.safe_load(EXPORT.read_text())
    assert doc["asyncapi"] == "3.0.0"
    addresses = {c.get("address") for c in doc["channels"].values()}
    assert {"jobcast.jobs", "jobcast.schedule", "reply.{offset}", "reply.*"} <= addresses
    replies = doc["channels"]["jobcast.replies:reply.{offset}"]
    assert replies["bindings"]["amqp"]["exchange"]["name"] == "jobcast.replies"
    assert replies["bindings"]["amqp"]["exchange"]["type"] == "topic"
    assert "offset" in replies["parameters"]
    schemas = doc["components"]["schemas"]
    for name in (
        "Job",
        "JobRequest",
        "JobAccepted",
        "ScheduleRejected",
        "Reply",
        "ReplyKind",
        "ProgressQuery",
    ):
        assert name in schemas, name
    assert "EmptyPayload" not in schemas  # every handler's payload is documented
    payloads = {m["payload"].get("$ref") for m in doc["components"]["messages"].values()}
    assert {
        "#/components/schemas/Job",
        "#/components/schemas/JobRequest",
        "#/components/schemas/Reply",
    } <= payloads
    assert schemas["JobRequest"]["examples"] == [
        {"deployment": "Docker", "framework": "FastAPI", "fn": "default_fn"}
    ]


def test_every_queue_and_exchange_of_the_topology_is_a_channel_with_its_arguments():
    declared = [v for v in vars(topology).values() if isinstance(v, Queue | Exchange)]
    assert {id(v) for v in declared} == {id(v) for v in (*ALL_QUEUES, *ALL_EXCHANGES)}
    channels = yaml.safe_load(EXPORT.read_text())["channels"].values()
    queues = {
        c["bindings"]["amqp"]["queue"]["name"]: c
        for c in channels
        if "queue" in c["bindings"]["amqp"]
    }
    for queue in ALL_QUEUES:
        channel = queues[queue.name]
        assert channel["description"] == queue.description
        assert channel["x-arguments"] == queue.arguments
        assert channel["bindings"]["amqp"]["queue"]["durable"] == queue.durable
    for queue, exchange in BINDINGS:
        bound = {"exchange": exchange.name, "routingKey": queue.routing_key}
        assert queues[queue.name]["x-bound-to"] == bound
    exchanges = [
        c["bindings"]["amqp"]["exchange"] | {"description": c["description"]}
        for c in channels
        if "exchange" in c["bindings"]["amqp"]
    ]
    for exchange in ALL_EXCHANGES:
        assert {
            "name": exchange.name,
            "type": exchange.type.value,
            "durable": exchange.durable,
            "autoDelete": False,
            "vhost": "/",
            "description": exchange.description,
        } in exchanges, exchange.name


def test_every_message_is_documented_with_its_models_schema_and_direction():
    doc = yaml.safe_load(EXPORT.read_text())
    operations = list(doc["operations"].values())
    for op in OPERATIONS:
        on = [o for o in operations if o["action"] == op.action and o["description"] == op.who]
        assert len(on) == 1, op.who
        channel = _resolve(doc, on[0]["channel"]["$ref"])
        assert op.on.name in (
            channel["bindings"]["amqp"].get("queue", {}).get("name"),
            channel["bindings"]["amqp"].get("exchange", {}).get("name"),
        )
        for message in (*op.messages, *op.answers):
            if isinstance(message, Opaque):
                assert (
                    doc["components"]["messages"][message.name]["description"]
                    == message.description
                )
                continue
            payload = _resolve(
                doc, doc["components"]["messages"][message.__name__]["payload"]["$ref"]
            )
            schema = message.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, nested in schema.pop("$defs", {}).items():
                assert doc["components"]["schemas"][name] == nested, name
            assert payload == schema, message.__name__


def test_asyncapi_references_all_resolve():
    doc = document()
    for ref in _refs(doc):
        _resolve(doc, ref)
    for operation in doc["operations"].values():
        assert operation["action"] in {"send", "receive"}
        _resolve(doc, operation["channel"]["$ref"])


async def test_gateway_serves_the_same_asyncapi_document(gateway: httpx.AsyncClient):
    assert (await gateway.get("/asyncapi")).json() == document()
    as_yaml = await gateway.get("/asyncapi.yaml")
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert as_yaml.text == EXPORT.read_text()


async def test_openapi_is_valid_with_examples_and_every_error(gateway: httpx.AsyncClient):
    spec = (await gateway.get("/openapi.json")).json()
    validate(spec)
    paths = spec["paths"]
    schedule = paths["/schedule"]["post"]
    assert {"200", "409", "413", "422", "503"} <= set(schedule["responses"])
    request_schema = spec["components"]["schemas"]["JobRequest"]
    assert request_schema["examples"][0]["fn"] == "default_fn"
    for path in ("/messages/{offset}", "/messages/{offset}/stream", "/jobs/{offset}"):
        responses = paths[path]["get"]["responses"]
        assert {"200", "404", "422", "503"} <= set(responses), path
    assert paths["/messages/{offset}"]["get"]["responses"]["404"]["content"]["application/json"][
        "example"
    ] == {"detail": "Offset not found"}
    stream = paths["/messages/{offset}/stream"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert {p["name"] for p in stream["parameters"]} >= {"offset", "last-event-id", "after"}
    assert {"/health", "/ready", "/metrics", "/asyncapi"} <= set(paths)
    cancel = paths["/jobs/{offset}/cancel"]["post"]
    assert {"200", "404", "409", "422", "503"} <= set(cancel["responses"])
    assert cancel["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CancelAccepted"
    }
    request = spec["components"]["schemas"]["JobRequest"]["properties"]
    assert {"run_at", "delay_seconds"} <= set(request)
    assert {"scheduled", "cancelled"} <= set(spec["components"]["schemas"]["JobState"]["enum"])
    assert (await gateway.get("/docs")).status_code == 200
