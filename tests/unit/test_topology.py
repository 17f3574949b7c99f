"""The topology is named once, as plain data, and FastStream declares it exactly so."""

import pytest

from contracts.topology import ALL_EXCHANGES, ALL_QUEUES, DEAD_LETTER_EXCHANGE, REPLIES_EXCHANGE
from messaging.faststream import rabbit_exchange, rabbit_queue


@pytest.mark.parametrize("queue", ALL_QUEUES, ids=lambda q: q.name)
def test_a_queue_faststream_declares_has_the_arguments_declare_topology_uses(queue):
    # RabbitMQ refuses a second declaration of a queue with other arguments
    built = rabbit_queue(queue)
    assert (built.name, built.durable, built.arguments) == (
        queue.name,
        queue.durable,
        queue.arguments,
    )
    assert built.routing() == (queue.routing_key or queue.name)


@pytest.mark.parametrize("exchange", [DEAD_LETTER_EXCHANGE, REPLIES_EXCHANGE], ids=lambda e: e.name)
def test_an_exchange_faststream_declares_is_the_one_declare_topology_declares(exchange):
    built = rabbit_exchange(exchange)
    assert (built.name, built.type.value, built.durable) == (
        exchange.name,
        exchange.type.value,
        exchange.durable,
    )


@pytest.mark.parametrize("declared", [*ALL_QUEUES, *ALL_EXCHANGES], ids=lambda d: d.name)
def test_every_queue_and_exchange_says_what_it_is_for(declared):
    # the AsyncAPI document's text for it, written nowhere else
    assert declared.description.strip()
