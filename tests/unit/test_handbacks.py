"""A hand-back becomes a job again only if a gateway signed it and its crash count is one jobcast
could have written; it is acked only once jobcast.jobs confirmed it (producer/handbacks.py)."""

from dataclasses import dataclass, field
from typing import Any

import pytest

from contracts.errors import BrokerUnavailableError, DeadLetterReason, RefusedMessageError
from contracts.handbacks import checked_hand_back
from contracts.headers import DELIVERY_COUNT, HEADER_CRASHES, HEADER_SIGNATURE
from contracts.messages import Job, JobRequest
from contracts.signing import Signer
from contracts.topology import DELIVERY_LIMIT
from producer.handbacks import HandBackRelay

SIGNER = Signer("k")
JOB = (
    Job(offset=3, request=JobRequest(deployment="Docker", framework="FastAPI", fn="default_fn"))
    .model_dump_json()
    .encode()
)
SIGNED = {HEADER_SIGNATURE: SIGNER.sign(JOB), "traceparent": "00-ab-cd-01"}


def test_a_good_hand_back_keeps_its_headers_but_not_the_brokers_history():
    headers = {**SIGNED, HEADER_CRASHES: 2, DELIVERY_COUNT: 4, "x-death": [{}]}
    assert checked_hand_back(JOB, headers, SIGNER) == {**SIGNED, HEADER_CRASHES: 2}


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (JOB, {HEADER_CRASHES: 0}, DeadLetterReason.UNSIGNED),
        (JOB, {HEADER_SIGNATURE: Signer("other").sign(JOB), HEADER_CRASHES: 0}, "unsigned"),
        (JOB + b" ", {HEADER_SIGNATURE: SIGNER.sign(JOB), HEADER_CRASHES: 0}, "unsigned"),
        (b"[]", {HEADER_SIGNATURE: SIGNER.sign(b"[]"), HEADER_CRASHES: 0}, "invalid_job"),
        (b"x" * 70_000, {HEADER_SIGNATURE: SIGNER.sign(b"x" * 70_000)}, "too_large"),
        (JOB, SIGNED, "invalid_hand_back"),
        (JOB, {**SIGNED, HEADER_CRASHES: -1}, "invalid_hand_back"),
        (JOB, {**SIGNED, HEADER_CRASHES: DELIVERY_LIMIT + 1}, "invalid_hand_back"),
        (JOB, {**SIGNED, HEADER_CRASHES: 2**63 - 1}, "invalid_hand_back"),
        (JOB, {**SIGNED, HEADER_CRASHES: True}, "invalid_hand_back"),
        (JOB, {**SIGNED, HEADER_CRASHES: "2"}, "invalid_hand_back"),
        (JOB, {**SIGNED, HEADER_CRASHES: 1.0}, "invalid_hand_back"),
    ],
)
def test_a_forged_or_broken_hand_back_is_refused_with_its_reason(body, headers, reason):
    with pytest.raises(RefusedMessageError) as refused:
        checked_hand_back(body, headers, SIGNER)
    assert refused.value.reason == reason


def test_a_refused_crash_count_is_named_but_not_echoed_at_length():
    with pytest.raises(RefusedMessageError) as refused:
        checked_hand_back(JOB, {**SIGNED, HEADER_CRASHES: "9" * 10_000}, SIGNER)
    assert HEADER_CRASHES in refused.value.detail
    assert len(refused.value.detail) < 200


@dataclass
class Delivery:
    """What the relay uses of an aio-pika message: body, headers, and how it was settled."""

    body: bytes
    headers: dict[str, Any]
    settled: list[str] = field(default_factory=list)
    redelivered: bool = False

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append(f"nack requeue={requeue}")

    async def reject(self, requeue: bool = False) -> None:
        self.settled.append(f"reject requeue={requeue}")


class Relayed:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.published: list[tuple[bytes, dict[str, object]]] = []
        self.dead: list[tuple[DeadLetterReason, str]] = []

    async def republish(self, body: bytes, headers: dict[str, object]) -> None:
        if self.fail:
            raise BrokerUnavailableError("RabbitMQ did not confirm the job")
        self.published.append((body, headers))

    async def dead_letter(self, message: Any, reason: DeadLetterReason, detail: str) -> bool:
        self.dead.append((reason, detail))
        return True

    def relay(self) -> HandBackRelay:
        return Relay(self.republish, SIGNER, self.dead_letter)


class Relay(HandBackRelay):
    """The relay, its acks recorded on the delivery (messaging/acks.py sends real ones)."""

    async def ack(self, message: Any) -> None:
        await message.ack()


async def test_a_hand_back_is_acked_only_after_jobcast_jobs_confirmed_it():
    seen = Relayed()
    delivery = Delivery(JOB, {**SIGNED, HEADER_CRASHES: 1, DELIVERY_COUNT: 3})
    await seen.relay().handle(delivery)  # type: ignore[arg-type]
    assert seen.published == [(JOB, {**SIGNED, HEADER_CRASHES: 1})]
    assert delivery.settled == ["ack"]
    assert seen.dead == []


async def test_a_hand_back_jobcast_jobs_did_not_confirm_goes_back_to_its_queue():
    seen = Relayed(fail=True)
    delivery = Delivery(JOB, {**SIGNED, HEADER_CRASHES: 1})
    await seen.relay().handle(delivery)  # type: ignore[arg-type]
    assert delivery.settled == ["nack requeue=True"]
    assert seen.dead == []


async def test_a_forged_hand_back_is_dead_lettered_and_never_published():
    seen = Relayed()
    delivery = Delivery(b'{"offset": 0}', {HEADER_CRASHES: 0})
    await seen.relay().handle(delivery)  # type: ignore[arg-type]
    assert seen.published == []
    assert [reason for reason, _ in seen.dead] == [DeadLetterReason.UNSIGNED]
    assert delivery.settled == ["ack"]  # its copy is on jobcast.dead
