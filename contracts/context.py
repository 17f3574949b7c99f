"""Handler parameters for the incoming message and the broker, resolved on the event loop.

Use these instead of `faststream.rabbit.annotations.RabbitMessage` / `RabbitBroker`.
"""

from typing import Annotated, Any

from faststream._internal.context import Context
from faststream.rabbit import RabbitBroker as _Broker
from faststream.rabbit.message import RabbitMessage as _Message


class LoopContext(Context):
    """FastStream's `Context`, resolved on the event loop instead of in a worker thread."""

    # NOTE: FastStream 0.7's Context.use is a plain function, so fast_depends runs it through
    # anyio.to_thread.run_sync: one thread round trip per message for every such parameter
    # (measured: the largest single item in the gateway's profile under load, plus GIL
    # ping-pong). It is a dict lookup; a coroutine keeps it on the loop.
    async def use(self, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return super().use(**kwargs)


RabbitMessage = Annotated[_Message, LoopContext("message")]
RabbitBroker = Annotated[_Broker, LoopContext("broker")]
