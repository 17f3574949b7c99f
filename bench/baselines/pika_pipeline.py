"""Baseline (a): a hand-written minimal pipeline with aio-pika alone.

`worker`: consumes the jobs queue, publishes result1..3 and done to a topic exchange, each
persistent and confirmed before the next, then acks the job. `recorder`: consumes the replies
and keeps them in memory. Each runs in its own process:

    python -m bench.baselines.pika_pipeline worker|recorder AMQP_URL

The recorder reports on stdout the moment a job's first result and its done reply are held
("F <offset>", "D <offset>"), which is when a reader of its memory could see them.
"""

import asyncio
import json
import os
import sys

import aio_pika
import uvloop

JOBS = "baseline.jobs"
REPLIES = "baseline.replies"
RECORDER = "baseline.recorder"
PREFETCH = 64


async def declare(channel: aio_pika.abc.AbstractChannel) -> aio_pika.abc.AbstractExchange:
    """The topology: a durable jobs queue, a topic exchange, a durable recorder queue."""
    await channel.declare_queue(JOBS, durable=True)
    exchange = await channel.declare_exchange(REPLIES, aio_pika.ExchangeType.TOPIC, durable=True)
    recorder = await channel.declare_queue(RECORDER, durable=True)
    await recorder.bind(exchange, routing_key="reply.*")
    return exchange


async def worker(url: str) -> None:
    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=PREFETCH)
    exchange = await declare(channel)
    step_seconds = float(os.environ.get("BENCH_STEP_SECONDS", "0"))

    async def on_job(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        job = json.loads(message.body)
        offset = job["offset"]
        values = ["result1", "result2", "result3", "done"]
        for seq, value in enumerate(values):
            if seq < 3:
                await asyncio.sleep(step_seconds)
            body = json.dumps({"offset": offset, "seq": seq, "value": value}).encode()
            await exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=f"reply.{offset}",
            )
        await message.ack()

    await (await channel.get_queue(JOBS)).consume(on_job)
    print("ready", flush=True)
    await asyncio.Future()


async def recorder(url: str) -> None:
    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=256)
    await declare(channel)
    results: dict[int, list[str]] = {}
    out = sys.stdout

    async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        reply = json.loads(message.body)
        offset = reply["offset"]
        results.setdefault(offset, []).append(reply["value"])
        await message.ack()
        if reply["seq"] == 0:
            out.write(f"F {offset}\n")
            out.flush()
        elif reply["value"] == "done":
            out.write(f"D {offset}\n")
            out.flush()

    await (await channel.get_queue(RECORDER)).consume(on_reply)
    print("ready", flush=True)
    await asyncio.Future()


def main() -> None:
    role, url = sys.argv[1], sys.argv[2]
    uvloop.run({"worker": worker, "recorder": recorder}[role](url))


if __name__ == "__main__":
    main()
