"""The worker's control edge: every control message on jobcast.control, on a queue of its own.

Each worker declares an exclusive, auto-delete queue (contracts/topology.py, control_queue)
bound to the fanout exchange, so a cancel reaches every worker at once. The queue lives and
dies with the worker's connection: what is sent while it is away is lost here, and learnt from
the ledger instead (Cancels.may_have_missed, and the resume point of a redelivered job).
"""

import logging
import uuid

import aio_pika.abc
from pydantic import ValidationError

from consumer.cancels import Cancels
from contracts.control import CONTROL_MESSAGE_BYTES, CancelJob
from contracts.errors import describe
from contracts.headers import HEADER_SIGNATURE
from contracts.signing import Signer
from contracts.topology import CONTROL_EXCHANGE, control_queue
from messaging.connection import goodbye

logger = logging.getLogger(__name__)


class ControlListener:
    """Hears control messages and tells `cancels`; messages that are not a gateway's (too
    large, unsigned, not a CancelJob) are dropped with a log line: nobody waits on them."""

    def __init__(self, cancels: Cancels, signer: Signer) -> None:
        self._cancels = cancels
        self._signer = signer
        self.queue = control_queue(uuid.uuid4().hex)
        self._channel: aio_pika.abc.AbstractChannel | None = None

    async def start(self, connection: aio_pika.abc.AbstractConnection) -> None:
        """Declare this worker's queue, bind it and consume (restored with the connection)."""
        self._channel = await connection.channel(publisher_confirms=False)
        queue = await self._channel.declare_queue(
            self.queue.name,
            durable=False,
            exclusive=True,
            auto_delete=True,
            arguments=dict(self.queue.arguments),
        )
        await queue.bind(CONTROL_EXCHANGE.name)
        await queue.consume(self.on_message, no_ack=True)
        self._cancels.listening()
        if isinstance(connection, aio_pika.abc.AbstractRobustConnection):
            # NOTE: the robust channel declares, binds and consumes again on a reconnect;
            # whatever was sent meanwhile is missed, so from then on the ledger is asked.
            connection.reconnect_callbacks.add(lambda *_: self._cancels.listening())

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await goodbye(self._channel.close())

    async def on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        body = message.body
        if len(body) > CONTROL_MESSAGE_BYTES:
            logger.warning("control message of %s bytes dropped", len(body))
            return
        if not self._signer.verify(body, (message.headers or {}).get(HEADER_SIGNATURE)):
            logger.warning("unsigned control message dropped (only gateways send them)")
            return
        try:
            cancel = CancelJob.model_validate_json(body)
        except ValidationError as exc:
            logger.warning("invalid control message dropped: %s", describe(exc))
            return
        logger.info("cancel heard offset=%s", cancel.offset)
        self._cancels.heard(cancel.offset)
