"""Publishing replies: each step's Reply on jobcast.replies, persistent and confirmed."""

from collections.abc import Callable

from contracts import Reply
from contracts.publishing import ConfirmedChannel
from contracts.topology import REPLIES_EXCHANGE, reply_key


class ReplyPublisher(ConfirmedChannel):
    """Publishes Replies with routing key reply.<offset> on a confirm channel of its own.

    `publish` returns once RabbitMQ confirmed; callers bound the wait (`run_job` does, with
    one deadline per job).
    """

    published: Callable[[Reply], None] | None = None
    """Told every reply RabbitMQ confirmed (metrics hook)."""

    async def publish_reply(self, reply: Reply) -> None:
        await self.publish(
            reply.model_dump_json().encode(),
            exchange=REPLIES_EXCHANGE.name,
            routing_key=reply_key(reply.offset),
        )
        if self.published is not None:
            self.published(reply)
