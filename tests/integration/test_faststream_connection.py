"""What jobcast relies on from FastStream's public API beyond names: `await broker.connect()`
hands out the broker's own aio-pika robust connection, the one start_broker starts the
aio-pika parts on (jobcast/bootstrap.py). Fails on an upgrade that changes it."""

import aio_pika.abc
from faststream.rabbit import RabbitBroker


async def test_connect_hands_out_the_brokers_one_robust_aio_pika_connection(amqp_url: str):
    broker = RabbitBroker(amqp_url)
    async with broker:
        connection = await broker.connect()
        assert isinstance(connection, aio_pika.abc.AbstractRobustConnection)
        assert await broker.connect() is connection  # one connection, not a new one per call
        assert not connection.is_closed
    assert connection.is_closed  # stopping the broker closes it: the parts go with it
