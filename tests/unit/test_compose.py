"""compose.yaml cannot run here (no Docker engine): check what a reviewer would."""

from pathlib import Path
from urllib.parse import urlsplit

import yaml

from contracts.urls import node_urls

ROOT = Path(__file__).resolve().parents[2]


def test_compose_stack_is_wired_to_health_and_readiness():
    stack = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = stack["services"]
    assert {"rabbitmq", "postgres", "gateway", "worker"} <= set(services)
    for name in ("rabbitmq", "postgres"):
        image = services[name]["image"]
        assert ":" in image
        assert not image.endswith(":latest")  # pinned
    assert "rabbitmq_prometheus" in (ROOT / "deploy/rabbitmq/enabled_plugins").read_text()
    for name in ("rabbitmq", "postgres", "gateway", "worker"):
        assert services[name]["healthcheck"]["test"], name
    for name, port in (("gateway", "8000"), ("worker", "8001")):
        service = services[name]
        assert f"127.0.0.1:{port}/ready" in " ".join(service["healthcheck"]["test"])
        assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert service["environment"]["JOBCAST_AMQP_URL"].startswith("amqp://")
        # the broker is on another host: a shared signing key, never a default one
        assert service["environment"]["JOBCAST_SIGNING_KEY"].startswith("${JOBCAST_SIGNING_KEY:?")
    assert services["worker"]["environment"]["JOBCAST_WORKER_PORT"] == "8001"
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert "ports" not in services["worker"]  # scalable: no fixed host port


def test_the_cluster_profile_is_three_nodes_of_the_single_brokers_kind_and_two_gateways():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    single = services["rabbitmq"]
    nodes = [services[f"rabbitmq-{i}"] for i in (1, 2, 3)]
    conf = (ROOT / "deploy/rabbitmq/cluster.conf").read_text()
    assert "load_definitions = /etc/rabbitmq/definitions.json" in conf
    for node in nodes:
        assert node["profiles"] == ["cluster"]
        assert node["image"] == single["image"]  # one RabbitMQ version
        assert node["healthcheck"]["test"] == single["healthcheck"]["test"]
        assert f"rabbit@{node['hostname']}" in conf  # found by name at first boot
        mounts = dict(volume.rsplit(":", 2)[:2] for volume in node["volumes"])
        assert mounts["./deploy/rabbitmq/definitions.json"] == "/etc/rabbitmq/definitions.json"
        assert mounts["./deploy/rabbitmq/cluster.conf"] == "/etc/rabbitmq/rabbitmq.conf"
        cookie = node["environment"]["RABBITMQ_ERLANG_COOKIE"]
        assert cookie.startswith("${JOBCAST_ERLANG_COOKIE:?")  # one secret, never a default
    hosts = {f"{node['hostname']}:5672" for node in nodes}
    firsts = set()
    for name in ("gateway-a", "gateway-b", "cluster-worker"):
        service = services[name]
        assert service["profiles"] == ["cluster"]
        url = service["environment"]["JOBCAST_AMQP_URL"]
        named = {urlsplit(node).netloc.rpartition("@")[2] for node in node_urls(url)}
        assert named == hosts, name  # every node, in its own order
        firsts.add(urlsplit(node_urls(url)[0]).hostname)
        assert set(service["depends_on"]) == {"rabbitmq-1", "rabbitmq-2", "rabbitmq-3", "postgres"}
        assert service["healthcheck"]["test"]
    assert len(firsts) == 3  # each starts on another node
    for name in ("gateway-a", "gateway-b"):
        assert services[name]["environment"]["JOBCAST_QUORUM_SIZE"] == "3"
        assert services[name]["environment"]["JOBCAST_DATABASE_URL"].startswith("postgresql://")
    assert services["cluster-worker"]["environment"]["JOBCAST_AMQP_URL"].startswith(
        "amqp://jobcast-worker:"
    )
