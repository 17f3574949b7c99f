"""The client's AMQP transport: schedule over jobcast.schedule and cancel over jobcast.cancel
(RPC), follow reply.<offset>.

aio-pika is imported when the transport is made, not with the client: a service that follows
jobs over HTTP only loads no broker library (tests/unit/test_layers.py says so).
"""

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from client.errors import ScheduleRejectedError
from contracts import (
    BrokerUnavailableError,
    JobAccepted,
    JobRequest,
    Reply,
    ScheduleRejected,
    UnknownOffsetError,
)
from contracts.batches import BatchAccepted, BatchRequest
from contracts.control import (
    CancelAccepted,
    CancelRejected,
    CancelRequest,
    JobFinishedError,
)
from contracts.topology import (
    BATCH_QUEUE,
    CANCEL_QUEUE,
    DIRECT_REPLY_TO,
    REPLIES_EXCHANGE,
    SCHEDULE_QUEUE,
    Queue,
    reply_key,
)
from contracts.urls import masked_url, node_urls

if TYPE_CHECKING:
    from aio_pika.abc import AbstractConnection, AbstractIncomingMessage, AbstractRobustConnection


class AmqpTransport:
    """One connection to RabbitMQ, opened on first use: to the first node of `amqp_url` that
    answers (`amqp://user:pass@host1:5672,host2:5672/vhost` names several), restored on the
    next node that answers whenever it is lost. A call in flight when it is lost fails with
    BrokerUnavailableError; `schedule` again with the same idempotency key."""

    def __init__(self, amqp_url: str, timeout: float = 10.0) -> None:
        import aio_pika
        import aiormq

        self._aio_pika = aio_pika
        # NOTE: the broker-is-gone exceptions of messaging/connection.py (BROKER_FAILURES),
        # written here again because the client depends on contracts only.
        self._failures: tuple[type[BaseException], ...] = (
            aiormq.exceptions.AMQPError,
            aiormq.exceptions.ChannelInvalidStateError,
            OSError,
        )
        self._url = amqp_url
        self._nodes = node_urls(amqp_url)
        self._timeout = timeout
        self._connection: AbstractRobustConnection | None = None

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _connect(self) -> "AbstractRobustConnection":
        if self._connection is None:
            failure: BaseException | None = None
            for index, node in enumerate(self._nodes):
                try:
                    self._connection = await self._aio_pika.connect_robust(
                        node, timeout=self._timeout, reconnect_interval=1.0
                    )
                except self._failures as exc:
                    failure = exc
                    continue
                self._follow_nodes(self._connection, index)
                break
            else:
                where = masked_url(self._url)
                raise BrokerUnavailableError(f"cannot reach RabbitMQ at {where}: {failure!r}")
        return self._connection

    def _follow_nodes(self, connection: "AbstractRobustConnection", current: int) -> None:
        """After a loss, and after each failed attempt to restore it, the connection's next
        attempt goes to the next node.

        NOTE: messaging/connection.follow_nodes written again (the client depends on contracts
        only): aio-pika calls the close callbacks then, and reads the public `url` per attempt.
        """
        if len(self._nodes) < 2:
            return
        following = itertools.cycle(self._nodes[current + 1 :] + self._nodes[: current + 1])
        make_url = self._aio_pika.connection.make_url

        def move_on(sender: "AbstractConnection | None", exc: BaseException | None) -> None:
            if sender is not None and not sender.is_closed:
                sender.url = make_url(next(following))  # type: ignore[attr-defined]

        connection.close_callbacks.add(move_on)

    async def schedule(self, request: JobRequest, idempotency_key: str | None) -> JobAccepted:
        """Publish the request on jobcast.schedule and wait for its {"offset": n}."""
        # NOTE: the intake treats message_id as the idempotency key.
        body = request.model_dump_json().encode()
        answer = await self._ask(SCHEDULE_QUEUE, body, idempotency_key or uuid.uuid4().hex)
        return _accepted(answer)

    async def schedule_batch(self, batch: BatchRequest) -> BatchAccepted:
        """Publish the batch on jobcast.schedule.batch and wait for its offsets."""
        answer = await self._ask(BATCH_QUEUE, batch.model_dump_json().encode(), uuid.uuid4().hex)
        if b'"offsets"' in answer:
            return BatchAccepted.model_validate_json(answer)
        rejected = ScheduleRejected.model_validate_json(answer)
        raise ScheduleRejectedError(rejected.error, rejected.detail)

    async def cancel(self, offset: int) -> CancelAccepted:
        """Publish a CancelRequest on jobcast.cancel and wait for its answer."""
        body = CancelRequest(offset=offset).model_dump_json().encode()
        answer = await self._ask(CANCEL_QUEUE, body, uuid.uuid4().hex)
        if b'"state"' in answer:
            return CancelAccepted.model_validate_json(answer)
        rejected = CancelRejected.model_validate_json(answer)
        if rejected.error == "unknown_offset":
            raise UnknownOffsetError(offset)
        if rejected.error == "finished":
            raise JobFinishedError(offset)
        raise ScheduleRejectedError(rejected.error, rejected.detail)

    async def _ask(self, queue: Queue, body: bytes, message_id: str) -> bytes:
        """Publish `body` on `queue` with a reply_to and return the body of its answer."""
        connection = await self._connect()
        aio_pika = self._aio_pika
        correlation_id = uuid.uuid4().hex
        try:
            async with connection.channel(publisher_confirms=True) as channel:
                answers: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
                direct = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
                await direct.consume(answers.put, no_ack=True)
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        body,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        correlation_id=correlation_id,
                        reply_to=DIRECT_REPLY_TO,
                        message_id=message_id,
                    ),
                    routing_key=queue.name,
                    mandatory=True,
                    timeout=self._timeout,
                )
                async with asyncio.timeout(self._timeout):
                    while (answer := await answers.get()).correlation_id != correlation_id:
                        pass
        except TimeoutError as exc:
            raise BrokerUnavailableError(
                f"no answer on {queue.name} within {self._timeout}s"
            ) from exc
        except self._failures as exc:
            raise BrokerUnavailableError(f"{queue.name} over AMQP failed: {exc!r}") from exc
        return answer.body

    @asynccontextmanager
    async def subscription(self, offset: int) -> AsyncIterator["asyncio.Queue[Reply]"]:
        """A temporary exclusive queue bound to reply.<offset>; its replies land in the queue."""
        connection = await self._connect()
        replies: asyncio.Queue[Reply] = asyncio.Queue()

        async def on_reply(message: "AbstractIncomingMessage") -> None:
            replies.put_nowait(Reply.model_validate_json(message.body))

        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            await queue.bind(REPLIES_EXCHANGE.name, routing_key=reply_key(offset))
            await queue.consume(on_reply, no_ack=True)
        except self._failures as exc:
            raise BrokerUnavailableError(
                f"cannot subscribe to {reply_key(offset)}: {exc!r}"
            ) from exc
        try:
            yield replies
        finally:
            await channel.close()


def _accepted(body: bytes) -> JobAccepted:
    if b'"offset"' in body:
        return JobAccepted.model_validate_json(body)
    rejected = ScheduleRejected.model_validate_json(body)
    raise ScheduleRejectedError(rejected.error, rejected.detail)
