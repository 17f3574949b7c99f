"""The gateway's parts that steer jobs: announcing cancels to the workers, releasing delayed
jobs (producer/release.py) and the AMQP cancel intake (producer/cancel_intake.py)."""

import asyncio

from aio_pika.abc import AbstractRobustConnection

from contracts import BrokerUnavailableError
from contracts.control import CancelJob
from contracts.headers import HEADER_SIGNATURE
from contracts.signing import Signer
from contracts.topology import CONTROL_EXCHANGE
from messaging.publishing import ConfirmedChannel


class ControlAnnouncer:
    """Publishes signed control messages on jobcast.control, with confirms, on a channel of
    its own: an `Announce` (producer/cancelling.py)."""

    def __init__(self, channel: ConfirmedChannel, signer: Signer, timeout: float) -> None:
        self._channel = channel
        self._signer = signer
        self._timeout = timeout

    async def start(self, connection: AbstractRobustConnection) -> None:
        """Open the channel on `connection` (the broker's)."""
        await self._channel.start(connection)

    async def close(self) -> None:
        await self._channel.close()

    async def __call__(self, message: CancelJob) -> None:
        body = message.model_dump_json().encode()
        try:
            async with asyncio.timeout(self._timeout):
                # NOTE: not mandatory: with no worker running no queue is bound, and that is
                # no failure (a worker that starts later learns of the cancel from the ledger).
                await self._channel.publish(
                    body,
                    exchange=CONTROL_EXCHANGE.name,
                    routing_key="",
                    headers={HEADER_SIGNATURE: self._signer.sign(body)},
                    mandatory=False,
                )
        except TimeoutError:
            raise BrokerUnavailableError(
                f"RabbitMQ did not confirm the cancel within {self._timeout}s"
            ) from None
