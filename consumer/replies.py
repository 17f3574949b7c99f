"""Publishing replies: each step's Reply on jobcast.replies, persistent and confirmed."""

from collections.abc import Callable

from contracts import Reply
from contracts.headers import HEADER_SIGNATURE
from contracts.signing import Signer
from contracts.topology import REPLIES_EXCHANGE, reply_key
from messaging.publishing import AroundPublish, ConfirmedChannel, no_headers


class ReplyPublisher(ConfirmedChannel):
    """Publishes signed Replies with routing key reply.<offset> on a confirm channel of its own.

    `publish` returns once RabbitMQ confirmed; callers bound the wait (`run_job` does, with
    one deadline per job).
    """

    def __init__(
        self,
        signer: Signer,
        *,
        around: AroundPublish = no_headers,
        published: Callable[[Reply], None] | None = None,
    ) -> None:
        super().__init__(around=around)
        self._signer = signer
        self.published = published
        """Told every reply RabbitMQ confirmed (a metrics hook)."""

    async def publish_reply(self, reply: Reply) -> None:
        body = reply.model_dump_json().encode()
        await self.publish(
            body,
            exchange=REPLIES_EXCHANGE.name,
            routing_key=reply_key(reply.offset),
            headers={HEADER_SIGNATURE: self._signer.sign(body)},
        )
        if self.published is not None:
            self.published(reply)
