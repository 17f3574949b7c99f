"""FastStream's objects for the topology, built from contracts/topology.py where FastStream
carries a message itself (the progress responder, hand-backs and dead-letter copies; README,
Dependencies and why, says what it carries and why).

The one place a RabbitQueue or RabbitExchange is built: the contracts stay plain data, and a
queue FastStream declares is declared with the very arguments messaging/declare.py uses
(RabbitMQ refuses a second declaration with other ones).
"""

from typing import Any

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

from contracts.topology import Exchange, Queue


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
