"""Metrics labels stay bounded: one series per queue, never one per job."""

from observability.tracing import destination_of


def test_reply_keys_and_reply_to_addresses_collapse_to_one_label():
    assert destination_of("reply.0") == destination_of("reply.98765") == "reply.*"
    assert (
        destination_of("amq.rabbitmq.reply-to.g1h2AA1yZXBseUA5.sCIqYc3b==")
        == "amq.rabbitmq.reply-to"
    )
    assert destination_of("jobcast.jobs") == "jobcast.jobs"
    assert destination_of("some-callback-queue-3f2a") == "other"
