"""FastStream's objects for the topology, built from contracts/topology.py where FastStream
carries a message itself (the progress responder, hand-backs and dead-letter copies; README,
Dependencies and why, says what it carries and why).

The one place a RabbitQueue or RabbitExchange is built: the contracts stay plain data, and a
queue FastStream declares is declared with the very arguments messaging/declare.py uses
(RabbitMQ refuses a second declaration with other ones).
"""

import logging
from typing import Any

from aio_pika import RobustConnection
from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue

from contracts.topology import Exchange, Queue
from contracts.urls import masked_url, node_urls
from messaging.connection import BROKER_FAILURES, follow_nodes

logger = logging.getLogger(__name__)


class ClusterBroker(RabbitBroker):
    """A RabbitBroker on the first node of `amqp_url` that answers (one node, or several:
    `amqp://user:pass@host1:5672,host2:5672/vhost`), its connection moved to the next node that
    answers whenever it is lost (messaging/connection.follow_nodes)."""

    def __init__(self, amqp_url: str, **options: Any) -> None:
        self.nodes = node_urls(amqp_url)
        super().__init__(self.nodes[0], **options)

    async def _connect(self) -> RobustConnection:
        # NOTE: FastStream 0.7 connects to the one URL it was built with (connect_robust with
        # its `_connection_kwargs`, no connection class or host list); `_connect` is the hook
        # each broker implements, so the node is chosen here, in this one place.
        # tests/integration/test_cluster_nodes.py fails on an upgrade that changes this.
        failure: BaseException | None = None
        for index, node in enumerate(self.nodes):
            self._connection_kwargs["url"] = node
            try:
                connection = await super()._connect()
            except BROKER_FAILURES as exc:
                logger.info("RabbitMQ node %s did not answer: %s", masked_url(node), exc)
                failure = exc
                continue
            follow_nodes(connection, self.nodes, index)
            return connection
        assert failure is not None  # node_urls names at least one node
        raise failure


def rabbit_queue(queue: Queue) -> RabbitQueue:
    """`queue` as FastStream declares and consumes it."""
    arguments = dict(queue.arguments)
    # NOTE: RabbitQueue's overloads type the arguments per literal queue type; the contracts
    # hold plain data, so they go in untyped (the RabbitMQ names are the same).
    options: dict[str, Any] = {
        "queue_type": QueueType(str(arguments.pop("x-queue-type", QueueType.CLASSIC.value))),
        "durable": queue.durable,
        "arguments": arguments,
        "routing_key": queue.routing_key,
    }
    return RabbitQueue(queue.name, **options)


def rabbit_exchange(exchange: Exchange) -> RabbitExchange:
    """`exchange` as FastStream declares and publishes to it."""
    return RabbitExchange(
        exchange.name, type=ExchangeType(exchange.type.value), durable=exchange.durable
    )
