"""The event loop every jobcast process runs on."""

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on uvloop where it is installed (uvicorn[standard] brings it)."""
    try:
        import uvloop
    except ImportError:  # e.g. Windows: the standard loop works, only slower
        return asyncio.run(main)
    # NOTE: under load a jobcast process spends most of its time in the loop and in socket
    # I/O (AMQP frames); uvloop does both in C (measured: see bench/README.md).
    return uvloop.run(main)
