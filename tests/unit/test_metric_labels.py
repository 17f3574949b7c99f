"""Metrics labels stay bounded: one series per queue, never one per job."""

from types import SimpleNamespace
from typing import Any

from jobcast.tracking import BoundedDestinations, destination_of


def test_reply_keys_and_reply_to_addresses_collapse_to_one_label():
    assert destination_of("reply.0") == destination_of("reply.98765") == "reply.*"
    assert (
        destination_of("amq.rabbitmq.reply-to.g1h2AA1yZXBseUA5.sCIqYc3b==")
        == "amq.rabbitmq.reply-to"
    )
    assert destination_of("jobcast.jobs") == "jobcast.jobs"
    assert destination_of("some-callback-queue-3f2a") == "other"


def test_consumed_replies_are_labelled_with_the_ledger_queue():
    provider = BoundedDestinations()
    labels = set()
    for offset in range(50):
        raw = SimpleNamespace(exchange="jobcast.replies", routing_key=f"reply.{offset}")
        msg: Any = SimpleNamespace(raw_message=raw, body=b"{}")
        labels.add(provider.get_consume_attrs_from_message(msg)["destination_name"])
    assert labels == {"jobcast.ledger"}
