"""The progress RPC: a question to an exchange, its answer on RabbitMQ's direct reply-to."""

import asyncio

import aio_pika
import aio_pika.abc
from pydantic import BaseModel

from contracts.errors import BrokerUnavailableError
from contracts.topology import DIRECT_REPLY_TO, Exchange
from messaging.connection import BROKER_FAILURES


async def request_reply(
    connection: aio_pika.abc.AbstractConnection | None,
    message: BaseModel,
    *,
    exchange: Exchange,
    timeout: float,
) -> bytes:
    """Send `message` to `exchange` and return the body of its answer (RPC, direct reply-to).

    An exchange, not a queue through the default exchange: a broker user allowed to write the
    default exchange may publish to every queue (deploy/rabbitmq/definitions.json). The
    answer needs no permission of the asker's: direct reply-to is no queue.

    Raises TimeoutError if nobody answered within `timeout`, BrokerUnavailableError if the
    broker connection is down (or None: not opened yet).
    """
    # NOTE: FastStream's broker.request() consumes on a *robust* reply queue that aio-pika
    # re-consumes when it restores a connection. A request made while a reconnect is being
    # restored (a redelivered job asking where to resume) can then break the restore
    # (DuplicateConsumerTag) and leave the worker connected but consuming nothing. So the
    # RPC gets a plain, short-lived channel of its own, which aio-pika never restores.
    if connection is None or not connection.connected.is_set():
        raise BrokerUnavailableError(f"RPC to {exchange.name}: RabbitMQ is unreachable")
    try:
        async with (
            asyncio.timeout(timeout),
            aio_pika.Channel(connection, publisher_confirms=False) as channel,
        ):
            answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

            async def on_answer(answer: aio_pika.abc.AbstractIncomingMessage) -> None:
                if not answered.done():
                    answered.set_result(answer.body)

            replies = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
            await replies.consume(on_answer, no_ack=True)
            asked = await channel.get_exchange(exchange.name, ensure=False)
            await asked.publish(
                aio_pika.Message(
                    message.model_dump_json().encode(),
                    reply_to=DIRECT_REPLY_TO,
                    content_type="application/json",
                ),
                routing_key="",
            )
            return await answered
    except TimeoutError:
        raise  # nobody answered in time: the caller's to decide, not a broker failure
    except BROKER_FAILURES as exc:
        raise BrokerUnavailableError(f"RPC to {exchange.name} failed: {exc!r}") from exc
