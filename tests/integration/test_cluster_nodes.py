"""Several broker addresses (issue 14): a connection goes to the first node of JOBCAST_AMQP_URL
that answers and, when its node dies, is restored on another, with its consumers. The "nodes"
are TCP proxies in front of the shared broker (tests/support/tcp_proxy.py), so a node can die
here without stopping RabbitMQ; tests/cluster/ does the same on a real three-node cluster.

Also what jobcast relies on from aio-pika and FastStream for it (messaging/connection.py
follow_nodes, messaging/faststream.ClusterBroker): fails on an upgrade that changes it."""

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aio_pika
import pytest

from client.amqp import AmqpTransport
from contracts import BrokerUnavailableError
from messaging.connection import connect
from messaging.declare import declare_topology
from messaging.faststream import ClusterBroker
from tests.support.tcp_proxy import NodeProxy, dead_node, with_host
from tests.support.waiting import eventually


@pytest.fixture
async def proxies(amqp_url: str) -> AsyncIterator[list[NodeProxy]]:
    parts = urlsplit(amqp_url)
    made = [await NodeProxy(parts.hostname or "127.0.0.1", parts.port or 5672).start()]
    made.append(await NodeProxy(*made[0].target).start())
    yield made
    for proxy in made:
        await proxy.kill()


def cluster_url(amqp_url: str, *nodes: str) -> str:
    return with_host(amqp_url, ",".join(nodes))


def node(proxy: NodeProxy) -> str:
    return f"127.0.0.1:{proxy.port}"


def port_of(connection: aio_pika.abc.AbstractConnection) -> int | None:
    return connection.url.port  # type: ignore[attr-defined, no-any-return]


async def test_connects_to_the_first_node_that_answers(amqp_url, proxies):
    a, b = proxies
    connection = await connect(cluster_url(amqp_url, dead_node(), node(a), node(b)))
    async with connection:
        assert port_of(connection) == a.port
        assert (a.connections, b.connections) == (1, 0)


async def test_no_node_answering_is_one_clear_error_without_the_password(amqp_url):
    url = cluster_url(amqp_url, dead_node(), dead_node())
    with pytest.raises(BrokerUnavailableError) as raised:
        await connect(url)
    password = urlsplit(amqp_url).password
    assert "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:" in str(raised.value)
    assert f":{password}@" not in str(raised.value)


async def test_a_lost_node_is_left_for_the_next_that_answers_with_its_consumer(amqp_url, proxies):
    a, b = proxies
    # the dead node between them: the first attempt after the loss fails, the next moves on
    connection = await connect(cluster_url(amqp_url, node(a), dead_node(), node(b)))
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("cluster.nodes", durable=True)
        received: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                await received.put(message.body)

        await queue.consume(on_message)
        await a.kill()
        await eventually(
            lambda: _connected_to(connection, b.port), timeout=15, what="moved to node b"
        )
        publisher = await aio_pika.connect(amqp_url)
        async with publisher:
            sending = await publisher.channel()
            await sending.default_exchange.publish(
                aio_pika.Message(b"after the loss"), routing_key="cluster.nodes"
            )
        assert await asyncio.wait_for(received.get(), 10) == b"after the loss"


async def _connected_to(connection: aio_pika.abc.AbstractRobustConnection, port: int) -> bool:
    return connection.connected.is_set() and port_of(connection) == port


async def test_the_faststream_broker_starts_on_the_first_node_that_answers_and_moves(
    amqp_url, proxies
):
    a, b = proxies
    broker = ClusterBroker(cluster_url(amqp_url, dead_node(), node(a), node(b)))
    async with broker:
        connection = await broker.connect()
        assert port_of(connection) == a.port
        await a.kill()
        await eventually(
            lambda: _connected_to(connection, b.port), timeout=15, what="moved to node b"
        )
        assert await broker.ping(timeout=5)


async def test_the_client_library_takes_the_same_list(amqp_url, proxies):
    a, b = proxies
    await declare_topology(amqp_url)
    transport = AmqpTransport(cluster_url(amqp_url, dead_node(), node(a), node(b)), timeout=5)
    try:
        async with transport.subscription(0):
            pass
        assert (a.connections, b.connections) == (1, 0)
        await a.kill()
        connection = await transport._connect()
        await eventually(
            lambda: _connected_to(connection, b.port), timeout=15, what="moved to node b"
        )
        async with transport.subscription(1):
            assert b.connections == 1
    finally:
        await transport.close()
