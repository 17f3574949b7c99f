"""Publishing with publisher confirms: a message is handed over once RabbitMQ confirmed it."""

import asyncio
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import aio_pika
import aio_pika.abc
from aiormq import spec
from faststream.rabbit import RabbitBroker
from pydantic import BaseModel

from contracts.errors import BrokerUnavailableError, PublishInDoubtError
from contracts.topology import Exchange, Queue
from messaging.connection import BROKER_FAILURES, goodbye
from messaging.faststream import rabbit_exchange, rabbit_queue

Headers = dict[str, str]
AroundPublish = Callable[[str, str], AbstractContextManager[Headers]]
"""Wraps one publish to (exchange, routing key), a tracing span say; yields the headers the
message is to carry."""


PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT)


def no_headers(exchange: str, routing_key: str) -> AbstractContextManager[Headers]:
    return nullcontext({})


class ConfirmedChannel:
    """A confirm-mode aio-pika channel of its own, for the hot paths (jobs, replies).

    FastStream's publish machinery cost more CPU than the publish itself (py-spy, bench/), so
    these publish with aio-pika directly. Publishes may overlap: RabbitMQ confirms them in any
    order, a channel keeps their order. A publish has no deadline of its own (a timer each
    cost ~10% of a worker's CPU): callers bound the wait.
    """

    def __init__(self, *, around: AroundPublish = no_headers) -> None:
        self.around = around
        self._channel: aio_pika.abc.AbstractChannel | None = None

    async def start(self, connection: aio_pika.abc.AbstractConnection) -> None:
        """Open the channel (restored with the connection, if robust)."""
        self._channel = await connection.channel(publisher_confirms=True, on_return_raises=True)

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await goodbye(self._channel.close())

    async def publish(
        self,
        body: bytes,
        *,
        exchange: str,
        routing_key: str,
        headers: Mapping[str, Any] | None = None,
        mandatory: bool = True,
    ) -> None:
        """Publish persistently and mandatorily, with `headers`; return once RabbitMQ confirmed it.

        BrokerUnavailableError if it refused or returned it (no queue would take it) or the
        channel is gone. Not `mandatory`: a message no queue takes is confirmed and dropped.
        """
        if self._channel is None:
            raise BrokerUnavailableError("the publishing channel is not open")
        with self.around(exchange, routing_key) as carried:
            properties = spec.Basic.Properties(
                content_type="application/json",
                delivery_mode=PERSISTENT,
                headers={**carried, **(headers or {})} or None,
            )
            try:
                # NOTE: on aiormq's channel (aio-pika's public way to it), not through an
                # aio-pika Exchange and Message: those rebuild these same properties on every
                # publish, and this is the hot path (py-spy, bench/). Returns, nacks and a lost
                # channel raise here as they do there (the channel has on_return_raises).
                channel = await self._channel.get_underlay_channel()
                await channel.basic_publish(
                    body,
                    exchange=exchange,
                    routing_key=routing_key,
                    properties=properties,
                    mandatory=mandatory,
                )
            except BROKER_FAILURES as exc:
                raise _not_confirmed(exc, in_doubt=True) from exc


async def publish_confirmed(
    broker: RabbitBroker,
    message: BaseModel | bytes | aio_pika.Message,
    *,
    timeout: float,
    queue: Queue | None = None,
    exchange: Exchange | None = None,
    routing_key: str = "",
    headers: dict[str, Any] | None = None,
    message_id: str | None = None,
) -> None:
    """Publish persistently and return once RabbitMQ confirmed; BrokerUnavailableError if not.

    A message no queue would take (mandatory, returned) counts as not confirmed. A ready
    aio-pika Message goes as it is (its own delivery mode and properties).
    """
    try:
        async with asyncio.timeout(timeout):
            await broker.publish(
                message,
                queue=rabbit_queue(queue) if queue is not None else "",
                exchange=rabbit_exchange(exchange) if exchange is not None else None,
                routing_key=routing_key,
                persist=True,
                mandatory=True,
                headers=headers,
                message_id=message_id,
            )
    except BROKER_FAILURES as exc:
        raise _not_confirmed(exc) from exc


def _not_confirmed(exc: BaseException, *, in_doubt: bool = False) -> BrokerUnavailableError:
    text = f"RabbitMQ did not confirm the message: {type(exc).__name__}: {exc}".rstrip(": ")
    return PublishInDoubtError(text) if in_doubt else BrokerUnavailableError(text)
